/**
 * TaskDirectory: one Durable Object (SQLite) that lists the federated tasks that exist, so a request naming a task
 * that does not exist is answered 404 without creating that task's Durable Object — whose storage would otherwise
 * come into being for any name anyone sends (200 GETs of random names made 600 SQLite files). It also keeps what
 * the Worker must know about a task before it reads a body for it: the largest message the task's rounds take.
 * The Worker side (`findTask`) caches entries per isolate; a deleted task's entry may linger in another isolate's
 * cache, where it costs one call to the task's object, which answers 404 (its storage is gone).
 */
import { DurableObject } from 'cloudflare:workers';

export interface TaskEntry {
  /** Largest well-formed SecAgg+ message for this task (wire.ts maxMessageBytes of its update length). */
  maxMessageBytes: number;
  /** Rounds are split into shards: past check-in, a device's messages go to its shard's aggregator. */
  sharded?: boolean;
}

export class TaskDirectory extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(
      'CREATE TABLE IF NOT EXISTS tasks (name TEXT PRIMARY KEY, entry TEXT NOT NULL, created_at TEXT NOT NULL)',
    );
  }

  lookup(name: string): TaskEntry | null {
    const row = this.#sql.exec('SELECT entry FROM tasks WHERE name = ?', name).toArray()[0];
    return row ? (JSON.parse(String(row.entry)) as TaskEntry) : null;
  }

  /** Up to `limit` task names after `after` (name order), and whether more follow. */
  list(after: string, limit: number): { names: string[]; more: boolean } {
    const rows = this.#sql
      .exec('SELECT name FROM tasks WHERE name > ? ORDER BY name LIMIT ?', after, limit + 1)
      .toArray()
      .map((r) => String(r.name));
    return { names: rows.slice(0, limit), more: rows.length > limit };
  }

  unregister(name: string): void {
    this.#sql.exec('DELETE FROM tasks WHERE name = ?', name);
  }

  /** Records a task that now exists (idempotent: a task's entry follows from its settings, which never change). */
  register(name: string, entry: TaskEntry): void {
    this.#sql.exec(
      'INSERT INTO tasks (name, entry, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET entry = excluded.entry',
      name,
      JSON.stringify(entry),
      new Date().toISOString(),
    );
  }
}

const known = new Map<string, TaskEntry>();
const MAX_KNOWN = 10_000;

/** The directory's entry for `name`, or undefined when no such task exists. Positive answers are cached. */
export async function findTask(env: Env, name: string): Promise<TaskEntry | undefined> {
  const cached = known.get(name);
  if (cached) return cached;
  const entry = await env.TASK_DIRECTORY.getByName('global').lookup(name);
  if (!entry) return undefined;
  if (known.size >= MAX_KNOWN) known.delete(known.keys().next().value!);
  known.set(name, entry);
  return entry;
}

export async function registerTask(env: Env, name: string, entry: TaskEntry): Promise<void> {
  await env.TASK_DIRECTORY.getByName('global').register(name, entry);
  known.set(name, entry);
}

export async function unregisterTask(env: Env, name: string): Promise<void> {
  await env.TASK_DIRECTORY.getByName('global').unregister(name);
  known.delete(name);
}

/** Up to `limit` existing tasks after `after`, by name. */
export async function listTasks(env: Env, after: string, limit: number): Promise<{ names: string[]; more: boolean }> {
  return env.TASK_DIRECTORY.getByName('global').list(after, limit);
}
