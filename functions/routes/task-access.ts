/**
 * What every task route does first: find the task the path names (404, and no object created, for a task the
 * TaskDirectory does not list) and turn the task object's refusals into JSON errors.
 */
import type { Context } from 'hono';
import { sha256Hex } from '../../federated/model/digest.ts';
import { fail } from '../middleware/errors.ts';
import type { Refusal } from '../tasks/task-answers.ts';
import { TaskClient } from '../tasks/task-client.ts';
import { isName } from './names.ts';

/** What helpers read of a request, whatever else its route's middleware set (e.g. jsonBody's `body`). */
export type Req = Pick<Context<{ Bindings: Env }>, 'env' | 'req'>;

/** The task the path names; 404 (and no object created) for a task that does not exist. */
export async function task(c: Req): Promise<TaskClient> {
  const id = c.req.param('task')!;
  const client = isName(id) ? await TaskClient.open(c.env, id) : undefined;
  if (!client) fail(404, `no task '${id.slice(0, 64)}'`);
  return client;
}

export function unwrap<T>(r: T | Refusal): Exclude<T, Refusal> {
  if (r && typeof r === 'object' && 'refused' in r) {
    const { status, error, retryAfterSeconds } = (r as Refusal).refused;
    fail(status, error, retryAfterSeconds === undefined ? undefined : { 'Retry-After': String(retryAfterSeconds) });
  }
  return r as Exclude<T, Refusal>;
}

/** Tokens are stored and compared as their SHA-256. */
export const tokenDigest = (token: string) => sha256Hex(new TextEncoder().encode(token));
