/**
 * Federated tasks: the handlers of contract/tasks.ts. Each task is one FederatedTask Durable Object, reached through
 * TaskClient; creating a task is task-create.ts, what devices call is task-devices.ts. Admin: list, read, pause,
 * resume, finish, delete, close a stage, report an evaluation.
 */
import { bearerToken, isAdminToken } from '../middleware/client-key.ts';
import type { Context } from 'hono';
import { DEFAULT_TASKS_PAGE, MAX_TASKS_PAGE, STATUS_FILTERS, type taskRoutes } from '../contract/tasks.ts';
import { fail } from '../middleware/errors.ts';
import { isName } from './names.ts';
import type { Refusal } from '../tasks/task-answers.ts';
import { listTasks } from '../tasks/task-directory.ts';
import type { TaskSummary } from '../../federated/aggregation/task-protocol.ts';
import type { Handler, Handlers } from './register.ts';
import { createTask } from './task-create.ts';
import { enrollDevice, getWeights, postMessage, relay, revokeDevice } from './task-devices.ts';
import { task, unwrap } from './task-access.ts';

type Ctx = Context<{ Bindings: Env }>;
type Routes = typeof taskRoutes;

/** Pauses or resumes a task: its clock stops (nothing closes, no message is taken) or starts again. */
function setRunning(running: boolean) {
  return async (c: Ctx) => {
    const t = await task(c);
    return c.json({ task: t.name, ...unwrap(await (running ? t.resume() : t.pause())) });
  };
}

/** Ends a task for good and releases its base pin: a finished task never publishes into the base again. */
async function finishTask(c: Ctx) {
  const t = await task(c);
  return c.json({ task: t.name, ...unwrap(await t.finish()) });
}

/** Deletes a task and what it stored (TaskClient.delete); the model versions it published stay. */
async function deleteTask(c: Ctx) {
  const t = await task(c);
  await t.delete();
  return c.json({ task: t.name, deleted: true });
}

/**
 * GET /v1/tasks?after=&limit=&status=: tasks by name, a page at a time; `next` is the `after` of the next page.
 * `status` filters the page (so a filtered page may hold fewer than `limit` tasks while `next` says more follow).
 */
async function listTaskSummaries(c: Ctx) {
  const status = c.req.query('status');
  if (status !== undefined && !(STATUS_FILTERS as readonly string[]).includes(status))
    fail(400, `status must be one of ${STATUS_FILTERS.join(', ')}`);
  const after = c.req.query('after') ?? '';
  if (after && !isName(after)) fail(400, 'after must be a task name');
  const limit = c.req.query('limit') === undefined ? DEFAULT_TASKS_PAGE : Number(c.req.query('limit'));
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= MAX_TASKS_PAGE))
    fail(400, `limit must be an integer from 1 to ${MAX_TASKS_PAGE}`);
  const { names, more } = await listTasks(c.env, after, limit);
  const tasks = (await Promise.all(names.map(async (n) => c.env.FEDERATED_TASK.getByName(n).summary()))) as (
    | TaskSummary
    | Refusal
  )[];
  const listed = tasks.filter(
    (t): t is TaskSummary =>
      !('refused' in t) &&
      (status === undefined || t.status === status || (status === 'active' && t.status !== 'finished')),
  );
  return c.json({ tasks: listed, ...(more && names.length ? { next: names.at(-1) } : {}) });
}

export const taskHandlers: Handlers<Routes> = {
  createTask,
  listTasks: listTaskSummaries,
  // The admin token gets the operator's view, which names devices (bad shares, why a round was abandoned in detail).
  getTask: async (c) => {
    const token = bearerToken(c);
    const admin = token !== undefined && (await isAdminToken(token, c.env.FEDGE_ADMIN_TOKEN));
    return c.json(unwrap(await (await task(c)).status(admin)));
  },
  deleteTask,
  closeStage: async (c) => c.json(unwrap(await (await task(c)).closeStage())),
  pauseTask: setRunning(false),
  resumeTask: setRunning(true),
  finishTask,
  postEvaluation: async (c) => {
    const { round, accuracy } = c.var.body;
    return c.json(unwrap(await (await task(c)).evaluation(round, accuracy)));
  },
  enrollDevice,
  revokeDevice,
  getRound: async (c) => c.json(unwrap(await (await task(c)).roundInfo())),
  getWeights,
  postMessage,
  getBroadcastRelay: relay('broadcast'),
  getDeliveryRelay: relay('delivery'),
  getUnmaskRelay: relay('unmask'),
};
