/**
 * A task's life inside workerd (real FederatedTask Durable Objects with SQLite): pause stops its clock and refuses
 * devices' messages without losing the round; resume starts it again; check-in that waits idleSeconds for devices
 * expires and pauses the task; finish ends it and releases its base pin; delete frees its storage and unlists it;
 * GET /v1/tasks filters by status. Every lifecycle route is admin-only.
 */
import { SELF, env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { RoundInfo, TaskStatus, TaskSummary } from '../../../federated/aggregation/task-protocol.ts';
import { ADMIN, uniqueName } from '../helpers.ts';
import { SecAggDevice } from '../../drivers/secagg-device.ts';
import { TOKEN, edge, expectError, post, taskBody } from './fixtures.ts';

const status = async (task: string) => (await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as TaskStatus;
const admin = (path: string, method = 'POST', headers: Record<string, string> = ADMIN) =>
  SELF.fetch(`http://edge${path}`, { method, headers });
const listed = async (query = '') =>
  ((await (await SELF.fetch(`http://edge/v1/tasks?limit=100${query}`)).json()) as { tasks: TaskSummary[] }).tasks.map(
    (t) => t.task,
  );

async function created(over: Record<string, unknown> = {}): Promise<string> {
  const task = uniqueName('life');
  const res = await post('/v1/tasks', taskBody(task, over));
  expect(res.status, await res.clone().text()).toBe(201);
  return task;
}

describe('task lifecycle', () => {
  it('pause, resume, finish and delete are admin routes; an unknown task is a 404', async () => {
    const task = await created();
    for (const [path, method] of [
      [`/v1/tasks/${task}/pause`, 'POST'],
      [`/v1/tasks/${task}/resume`, 'POST'],
      [`/v1/tasks/${task}/finish`, 'POST'],
      [`/v1/tasks/${task}`, 'DELETE'],
    ] as const) {
      await expectError(admin(path, method, {}), 401, /admin/i);
      await expectError(admin(path.replace(task, 'no-such-task'), method), 404, /no task 'no-such-task'/);
    }
    expect((await status(task)).status).toBe('running');
  });

  it('pause stops the clock and refuses messages (409) without losing a check-in; resume opens the round again', async () => {
    const task = await created();
    const a = await SecAggDevice.enrolled(edge, task, 'life-a', TOKEN);
    expect((await a.send(await a.advertise())).status).toBe(202);
    const paused = await admin(`/v1/tasks/${task}/pause`);
    expect(await paused.json()).toEqual({ task, status: 'paused' });
    expect((await admin(`/v1/tasks/${task}/pause`)).status).toBe(200); // idempotent
    expect(await status(task)).toMatchObject({
      status: 'paused',
      pausedReason: 'paused by the operator',
      round: 1,
      stage: 'advertise-keys',
    });
    expect(((await (await SELF.fetch(`http://edge/v1/tasks/${task}/round`)).json()) as RoundInfo).open).toBe(false);
    const b = await SecAggDevice.enrolled(edge, task, 'life-b', TOKEN);
    await expectError(b.send(await b.advertise()), 409, /the task is paused \(paused by the operator\)/);
    // No alarm is left to move the round while paused.
    expect(
      await runInDurableObject(env.FEDERATED_TASK.getByName(task), (_o, state: DurableObjectState) =>
        state.storage.getAlarm(),
      ),
    ).toBeNull();
    expect(await (await admin(`/v1/tasks/${task}/resume`)).json()).toEqual({ task, status: 'running' });
    const s = await status(task);
    expect(s.status).toBe('running');
    expect(s.pausedReason).toBeUndefined();
    expect(s.history[0]).toMatchObject({ round: 1, status: 'running', advertised: 1 }); // a's check-in kept
    expect((await b.send(await b.advertise())).status).toBe(202);
    expect(((await (await SELF.fetch(`http://edge/v1/tasks/${task}/round`)).json()) as RoundInfo).open).toBe(true);
  });

  it('check-in short of devices for idleSeconds expires: the task pauses, saying why, and resumes on request', async () => {
    const task = await created({ stageSeconds: 1, idleSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    await runDurableObjectAlarm(env.FEDERATED_TASK.getByName(task));
    expect(await status(task)).toMatchObject({
      status: 'paused',
      pausedReason: expect.stringMatching(/^check-in expired: 0 of the 3 devices a round needs checked in within 1 s$/),
      round: 1,
    });
    expect(await listed('&status=paused')).toContain(task);
    expect((await admin(`/v1/tasks/${task}/resume`)).status).toBe(200);
    expect((await status(task)).status).toBe('running');
    await expectError(
      post('/v1/tasks', taskBody(uniqueName('life'), { stageSeconds: 10, idleSeconds: 5 })),
      400,
      /idleSeconds must be from stageSeconds \(10\)/,
    );
  });

  it('finish abandons the round under way, releases the base pin and cannot be undone; the list filters by status', async () => {
    const task = await created({ spec: undefined, weights: undefined, base: { model: 'mnist-mlp', version: '1' } });
    const aliases = async () =>
      (
        (await (await SELF.fetch('http://edge/v2/models')).json()) as {
          models: { name: string; aliases: Record<string, string> }[];
        }
      ).models.find((m) => m.name === 'mnist-mlp')!.aliases;
    expect(await aliases()).toHaveProperty(`task.${task}`, '1');
    expect(await listed('&status=active')).toContain(task);
    expect(await (await admin(`/v1/tasks/${task}/finish`)).json()).toEqual({ task, status: 'finished' });
    expect(await aliases()).not.toHaveProperty(`task.${task}`);
    const s = await status(task);
    expect(s).toMatchObject({ status: 'finished', stage: 'finished' });
    expect(s.history[0]).toMatchObject({ status: 'abandoned', reason: 'the task was finished by the operator' });
    expect((await admin(`/v1/tasks/${task}/finish`)).status).toBe(200); // idempotent
    await expectError(admin(`/v1/tasks/${task}/resume`), 409, /has finished/);
    await expectError(admin(`/v1/tasks/${task}/pause`), 409, /has finished/);
    expect(await listed('&status=finished')).toContain(task);
    expect(await listed('&status=active')).not.toContain(task);
    expect(await listed('&status=running')).not.toContain(task);
    await expectError(
      SELF.fetch('http://edge/v1/tasks?status=done'),
      400,
      /status must be one of running, paused, finished, active/,
    );
  });

  it("delete frees the task's storage, unlists it and lets the name be used again", async () => {
    const task = await created();
    const a = await SecAggDevice.enrolled(edge, task, 'life-d', TOKEN);
    expect((await a.send(await a.advertise())).status).toBe(202);
    expect(await (await admin(`/v1/tasks/${task}`, 'DELETE')).json()).toEqual({ task, deleted: true });
    const rows = await runInDurableObject(env.FEDERATED_TASK.getByName(task), (_o, state: DurableObjectState) => ({
      meta: state.storage.sql.exec('SELECT COUNT(*) AS n FROM meta').one().n,
      devices: state.storage.sql.exec('SELECT COUNT(*) AS n FROM devices').one().n,
      blobs: state.storage.sql.exec('SELECT COUNT(*) AS n FROM blobs').one().n,
      messages: state.storage.sql.exec('SELECT COUNT(*) AS n FROM messages').one().n,
    }));
    expect(rows).toEqual({ meta: 0, devices: 0, blobs: 0, messages: 0 });
    await expectError(SELF.fetch(`http://edge/v1/tasks/${task}`), 404, /no task/);
    expect(await listed()).not.toContain(task);
    await expectError(admin(`/v1/tasks/${task}`, 'DELETE'), 404, /no task/);
    // The name is free: a new task under it starts from round 1 with nobody enrolled.
    expect((await post('/v1/tasks', taskBody(task, { rounds: 3 }))).status).toBe(201);
    expect(await status(task)).toMatchObject({ round: 1, rounds: 3, enrolledDevices: 0, status: 'running' });
  });
});
