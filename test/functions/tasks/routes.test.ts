/**
 * Task routes inside workerd (Cloudflare's Vitest integration; the real FederatedTask Durable Object with SQLite):
 * every bad request gets a 4xx JSON error naming what is wrong, and a refused request changes nothing stored.
 * The full protocol with real devices runs end to end in test/e2e/federated.test.ts.
 */
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../../../federated/bytes.ts';
import { createIdentity, type DeviceIdentity } from '../../../federated/secagg/client.ts';
import { sign } from '../../../federated/secagg/primitives.ts';
import { DEVICE_SIGNATURE_HEADER, relaySigningBytes } from '../../../federated/aggregation/task-protocol.ts';
import { ADMIN, uniqueName } from '../helpers.ts';
import { TOKEN, expectError, post, taskBody, tiny } from './fixtures.ts';

const TASK = uniqueName('routes-task');
const body = (over: Record<string, unknown> = {}) => taskBody(TASK, { update: undefined, ...over });

let relayDevice: DeviceIdentity;
beforeAll(async () => {
  const res = await post('/v1/tasks', body());
  expect(res.status).toBe(201);
  relayDevice = await createIdentity('dev-r');
  expect(
    (
      await post(
        `/v1/tasks/${TASK}/devices`,
        { device: 'dev-r', identityKey: toBase64(relayDevice.publicKey) },
        { Authorization: `Bearer ${TOKEN}` },
      )
    ).status,
  ).toBe(201);
});

/** A relay request signed by dev-r (relays need the device's signature). */
async function relay(round: number | string, kind: string, query = '') {
  const proof = toBase64(await sign(relayDevice.seed, relaySigningBytes(TASK, Number(round), kind, 'dev-r')));
  return SELF.fetch(`http://edge/v1/tasks/${TASK}/rounds/${round}/${kind}?device=dev-r${query}`, {
    headers: { [DEVICE_SIGNATURE_HEADER]: proof },
  });
}

describe('creating a task', () => {
  it.each([
    ['no rounds', { rounds: 0 }, /rounds/],
    [
      'weights of the wrong length',
      { weights: toBase64(new Uint8Array(8)) },
      /the spec has 15 parameters \(60 bytes of float32\), got 8 bytes/,
    ],
    ['weights not base64', { weights: '***' }, /weights: not base64/],
    [
      'non-finite weights',
      { weights: toBase64(new Uint8Array(new Float32Array(15).fill(Number.NaN).buffer)) },
      /finite/,
    ],
    ['a bad spec', { spec: { ...tiny, layers: [] } }, /^spec: /],
    [
      'threshold above neighbours',
      { secagg: { neighbours: 2, threshold: 3 } },
      /threshold 3 is larger than neighbours 2/,
    ],
    ['minDevices above devicesPerRound', { minDevices: 4 }, /minDevices 4 is larger than devicesPerRound 3/],
    ['a short enrollment token', { enrollmentToken: 'short' }, /enrollmentToken/],
    ['an unknown server optimizer', { serverOptimizer: { kind: 'sgd' } }, /serverOptimizer/],
    ['zero distributed-DP noise', { distributedDp: { clip: 1, noiseMultiplier: 0 } }, /distributedDp/],
  ])('%s → 400', async (_what, over, pattern) => {
    await expectError(post('/v1/tasks', body({ ...over, task: uniqueName('bad') })), 400, pattern);
  });

  it('needs the admin token, JSON, and refuses other settings under an existing name', async () => {
    await expectError(post('/v1/tasks', body(), {}), 401, /admin/i);
    await expectError(
      SELF.fetch('http://edge/v1/tasks', {
        method: 'POST',
        headers: { ...ADMIN, 'Content-Type': 'text/plain' },
        body: '{}',
      }),
      415,
      /application\/json/,
    );
    await expectError(post('/v1/tasks', '{"task":'), 400, /JSON/);
    expect((await post('/v1/tasks', body())).status).toBe(200); // the same settings again: idempotent
    await expectError(post('/v1/tasks', body({ rounds: 3 })), 409, /already exists with other settings/);
    const s = (await (await SELF.fetch(`http://edge/v1/tasks/${TASK}`)).json()) as {
      rounds: number;
      round: number;
      stage: string;
    };
    expect(s).toMatchObject({ rounds: 2, round: 1, stage: 'advertise-keys' }); // nothing changed
  });
});

describe('device routes', () => {
  it('enrollment needs the task token and a 32-byte key; a name keeps its key', async () => {
    const key = toBase64(new Uint8Array(32).fill(7));
    await expectError(
      post(`/v1/tasks/${TASK}/devices`, { device: 'dev-a', identityKey: key }, {}),
      401,
      /enrollment token required/,
    );
    await expectError(
      post(
        `/v1/tasks/${TASK}/devices`,
        { device: 'dev-a', identityKey: key },
        { Authorization: 'Bearer wrong-token-wrong-token' },
      ),
      403,
      /not valid for this task/,
    );
    await expectError(
      post(
        `/v1/tasks/${TASK}/devices`,
        { device: 'dev-a', identityKey: toBase64(new Uint8Array(31)) },
        { Authorization: `Bearer ${TOKEN}` },
      ),
      400,
      /32 bytes, got 31/,
    );
    await expectError(
      post(
        `/v1/tasks/${TASK}/devices`,
        { device: 'bad name!', identityKey: key },
        { Authorization: `Bearer ${TOKEN}` },
      ),
      400,
      /device/,
    );
    expect(
      (
        await post(
          `/v1/tasks/${TASK}/devices`,
          { device: 'dev-a', identityKey: key },
          { Authorization: `Bearer ${TOKEN}` },
        )
      ).status,
    ).toBe(201);
    expect(
      (
        await post(
          `/v1/tasks/${TASK}/devices`,
          { device: 'dev-a', identityKey: key },
          { Authorization: `Bearer ${TOKEN}` },
        )
      ).status,
    ).toBe(200);
    await expectError(
      post(
        `/v1/tasks/${TASK}/devices`,
        { device: 'dev-a', identityKey: toBase64(new Uint8Array(32).fill(8)) },
        { Authorization: `Bearer ${TOKEN}` },
      ),
      409,
      /another identity key/,
    );
    const s = (await (await SELF.fetch(`http://edge/v1/tasks/${TASK}`)).json()) as {
      enrolledDevices: number;
      minDevices: number;
    };
    expect(s.enrolledDevices).toBe(2); // dev-a and dev-r
    expect(s.minDevices).toBe(3); // what check-in waits for: the web app tells a waiting device how many more
  });

  it('messages must be binary SecAgg+ messages; relays say what is wrong', async () => {
    const msg = (b: BodyInit, type = 'application/octet-stream', extra: Record<string, string> = {}) =>
      SELF.fetch(`http://edge/v1/tasks/${TASK}/messages`, {
        method: 'POST',
        headers: { 'Content-Type': type, ...extra },
        body: b,
      });
    await expectError(msg('{}', 'application/json'), 415, /application\/octet-stream/);
    await expectError(msg(new Uint8Array([1, 2, 3])), 400, /not a SecAgg\+ message/);
    await expectError(
      msg(new Uint8Array([1]), 'application/octet-stream', { 'Fedge-Epsilon-Spent': '-1' }),
      400,
      /Fedge-Epsilon-Spent/,
    );
    await expectError(SELF.fetch(`http://edge/v1/tasks/${TASK}/rounds/1/broadcast`), 400, /device is required/);
    await expectError(
      SELF.fetch(`http://edge/v1/tasks/${TASK}/rounds/zero/broadcast?device=dev-a`),
      400,
      /positive integer/,
    );
    await expectError(relay(1, 'broadcast', '&wait=-1'), 400, /wait must be/);
    await expectError(SELF.fetch(`http://edge/v1/tasks/${TASK}/rounds/1/broadcast?device=dev-r`), 401, /signature/);
    await expectError(relay(1, 'broadcast'), 425, /advertise-keys is still open/);
    await expectError(relay(7, 'delivery'), 422, /round 7 is over/);
  });

  it('a long poll answers 204 (ask again, not an error a browser would log) when its wait ends with the stage still open', async () => {
    const started = Date.now();
    const res = await relay(1, 'broadcast', '&wait=1');
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('unknown tasks are 404 on every route', async () => {
    const none = uniqueName('no-task');
    await expectError(SELF.fetch(`http://edge/v1/tasks/${none}`), 404, /no task/);
    await expectError(SELF.fetch(`http://edge/v1/tasks/${none}/round`), 404, /no task/);
    await expectError(SELF.fetch(`http://edge/v1/tasks/${none}/weights`), 404, /no task/);
    await expectError(
      post(
        `/v1/tasks/${none}/devices`,
        { device: 'd', identityKey: toBase64(new Uint8Array(32)) },
        { Authorization: `Bearer ${TOKEN}` },
      ),
      404,
      /no task/,
    );
  });

  it('weights download with an ETag; evaluations are admin-only and only for published rounds', async () => {
    const res = await SELF.fetch(`http://edge/v1/tasks/${TASK}/weights`);
    expect(res.status).toBe(200);
    expect(new Float32Array(await res.arrayBuffer())).toEqual(new Float32Array(15).fill(0.1));
    expect(
      (
        await SELF.fetch(`http://edge/v1/tasks/${TASK}/weights`, {
          headers: { 'If-None-Match': res.headers.get('ETag')! },
        })
      ).status,
    ).toBe(304);
    await expectError(post(`/v1/tasks/${TASK}/evaluations`, { round: 1, accuracy: 0.5 }, {}), 401, /admin/i);
    await expectError(post(`/v1/tasks/${TASK}/evaluations`, { round: 1, accuracy: 1.5 }), 400, /accuracy/);
    await expectError(post(`/v1/tasks/${TASK}/evaluations`, { round: 1, accuracy: 0.5 }), 422, /published no model/);
    await expectError(post(`/v1/tasks/${TASK}/evaluations`, { round: 9, accuracy: 0.5 }), 404, /no round 9/);
  });
});

describe('GET /v1/tasks', () => {
  it('lists existing tasks by name with their round, stage and enrolled devices, a page at a time', async () => {
    const prefix = uniqueName('list');
    const names = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
    for (const n of names) expect((await post('/v1/tasks', taskBody(n))).status).toBe(201);
    const id = await createIdentity('dev-list');
    expect(
      (
        await post(
          `/v1/tasks/${names[1]}/devices`,
          { device: 'dev-list', identityKey: toBase64(id.publicKey) },
          { Authorization: `Bearer ${TOKEN}` },
        )
      ).status,
    ).toBe(201);
    type Page = {
      tasks: {
        task: string;
        model: string;
        round: number;
        stage: string;
        enrolledDevices: number;
        status: string;
        published: number;
      }[];
      next?: string;
    };
    const first = (await (await SELF.fetch(`http://edge/v1/tasks?after=${prefix}&limit=2`)).json()) as Page;
    expect(first.tasks.map((t) => t.task)).toEqual(names.slice(0, 2));
    expect(first.tasks[1]).toMatchObject({
      model: names[1],
      round: 1,
      stage: 'advertise-keys',
      enrolledDevices: 1,
      status: 'running',
      published: 0,
    });
    expect(first.next).toBe(names[1]);
    const second = (await (await SELF.fetch(`http://edge/v1/tasks?after=${first.next}&limit=2`)).json()) as Page;
    expect(second.tasks[0]!.task).toBe(names[2]);
  });

  it('refuses a limit out of range or an after that is no name (400)', async () => {
    await expectError(SELF.fetch('http://edge/v1/tasks?limit=0'), 400, /limit must be/);
    await expectError(SELF.fetch('http://edge/v1/tasks?limit=1000'), 400, /limit must be/);
    await expectError(SELF.fetch('http://edge/v1/tasks?after=%2F..'), 400, /after must be a task name/);
  });
});
