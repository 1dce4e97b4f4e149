/**
 * Federated task hardening inside workerd (issue 14, points 4–8), against the real FederatedTask and TaskDirectory
 * Durable Objects: settings that would break a round later, or void privacy, are refused at creation; a cheating
 * device cannot wedge a round (before: 500 on the last unmask, every relay and close-stage, alarms, restarts);
 * unknown tasks create no object; relays need the device's signature; forged messages spend nobody's tokens;
 * message bodies are capped from the task's d and read before the task's queue.
 */
import { SELF, env, evictDurableObject, listDurableObjectIds } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { toBase64 } from '../../../federated/bytes.ts';
import { sign } from '../../../federated/secagg/primitives.ts';
import { encodeMessage } from '../../../federated/secagg/wire.ts';
import { type TaskStatus, relaySigningBytes } from '../../../federated/aggregation/task-protocol.ts';
import { ADMIN, uniqueName } from '../helpers.ts';
import { D, TOKEN, edge, expectError, post, taskBody, upToUnmask } from './fixtures.ts';
import { encodeUpdate } from '../../../federated/secagg/fixed-point.ts';
import { SecAggDevice } from '../../drivers/secagg-device.ts';

async function createTask(over: Record<string, unknown> = {}): Promise<string> {
  const task = uniqueName('hard');
  const res = await post('/v1/tasks', taskBody(task, over));
  expect(res.status, await res.clone().text()).toBe(201);
  return task;
}

const status = async (task: string) => (await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as TaskStatus;

describe('settings that would break a task later are refused at creation', () => {
  it.each([
    [
      'update.clip 1e9 (the fixed point overflows: every GET …/round was a 500)',
      { update: { clip: 1e9, maxExamples: 10 } },
      400,
      /update: clip 1000000000 × 3 devices/,
    ],
    ['stageSeconds 1e-9 (the alarm loop burned a core)', { stageSeconds: 1e-9 }, 400, /stageSeconds must be from 1/],
    [
      'odd neighbours below devicesPerRound − 1 (the graph cannot be built)',
      { devicesPerRound: 8, minDevices: 4, secagg: { neighbours: 5, threshold: 3 } },
      400,
      /neighbours 5 must be even/,
    ],
    [
      'a threshold that needs more devices than a round has',
      { devicesPerRound: 3, secagg: { neighbours: 3, threshold: 3 } },
      400,
      /needs 4 devices per round/,
    ],
    ['absurd distributed-DP values', { distributedDp: { clip: 1e300, noiseMultiplier: 1e300 } }, 400, /distributedDp/],
    [
      't ≤ k/2 (a server could collect both kinds of share)',
      { devicesPerRound: 8, minDevices: 4, secagg: { neighbours: 4, threshold: 2 } },
      422,
      /at most half of 4 neighbours/,
    ],
    ['minDevices 2 (the other survivor subtracts its own update)', { minDevices: 2 }, 422, /at least 3 contributors/],
    [
      'distributed-DP noise that vanishes',
      { distributedDp: { clip: 1e-300, noiseMultiplier: 1e-300 } },
      400,
      /distributedDp: /,
    ],
    [
      'distributed-DP noise too small per device to add up to the claimed Gaussian',
      { distributedDp: { clip: 1, noiseMultiplier: 1e-9 } },
      422,
      /per-device noise .* is below 1 lattice step/,
    ],
  ])('%s', async (_what, over, code, pattern) => {
    const task = uniqueName('bad-settings');
    await expectError(post('/v1/tasks', taskBody(task, over)), code, pattern);
    await expectError(SELF.fetch(`http://edge/v1/tasks/${task}`), 404, /no task/); // nothing was created
  });

  it('a spec nested 20,000 deep is a 400 (it was a 500)', async () => {
    const task = uniqueName('deep');
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const text = JSON.stringify(taskBody(task)).replace('"spec":{', `"spec":{"extra":${deep},`);
    await expectError(post('/v1/tasks', text), 400, /nested deeper than/);
  });

  it('close-stage on an unknown task is a 404 (it was a 500)', async () => {
    await expectError(post(`/v1/tasks/${uniqueName('nope')}/close-stage`, {}), 404, /no task/);
  });
});

describe('unknown tasks create nothing', () => {
  it('requests naming tasks that do not exist are 404 and create no Durable Object', async () => {
    const before = (await listDurableObjectIds(env.FEDERATED_TASK)).length;
    for (let i = 0; i < 20; i++) {
      const none = uniqueName('ghost');
      await expectError(SELF.fetch(`http://edge/v1/tasks/${none}`), 404, /no task/);
      await expectError(SELF.fetch(`http://edge/v1/tasks/${none}/round`), 404, /no task/);
      await expectError(
        SELF.fetch(`http://edge/v1/tasks/${none}/messages`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/octet-stream' },
          body: new Uint8Array([1]),
        }),
        404,
        /no task/,
      );
    }
    expect((await listDurableObjectIds(env.FEDERATED_TASK)).length).toBe(before);
  });
});

describe('identity: relays and rate limits', () => {
  it("relays need the device's own signature: none → 401, another device's or a forged one → 403", async () => {
    const task = await createTask();
    const [a, b] = await Promise.all(['dev-a', 'dev-b'].map((id) => SecAggDevice.enrolled(edge, task, id, TOKEN)));
    await expectError(SELF.fetch(`http://edge/v1/tasks/${task}/rounds/1/broadcast?device=dev-a`), 401, /signature/);
    const bSig = toBase64(await sign(b!.identity.seed, relaySigningBytes(task, 1, 'broadcast', 'dev-a')));
    await expectError(a!.relayRes('broadcast', 1, bSig), 403, /not dev-a's/);
    await expectError(a!.relayRes('broadcast', 1, toBase64(new Uint8Array(64))), 403, /not dev-a's/);
    // A signature for another relay or round does not carry over.
    const other = toBase64(await sign(a!.identity.seed, relaySigningBytes(task, 1, 'delivery', 'dev-a')));
    await expectError(a!.relayRes('broadcast', 1, other), 403, /not dev-a's/);
    await expectError(a!.relayRes('broadcast'), 425, /still open/);
  });

  it('forged messages claiming a device do not spend its rate-limit tokens', async () => {
    const task = await createTask();
    const victim = await SecAggDevice.enrolled(edge, task, 'victim', TOKEN);
    const genuine = await victim.advertise();
    const forged = { ...genuine, signature: new Uint8Array(64).fill(1) };
    for (let i = 0; i < 30; i++) await expectError(victim.send(forged), 403, /bad signature/);
    expect((await victim.send(genuine)).status).toBe(202); // not 429
  });
});

describe('bodies are bounded before the task sees them', () => {
  it("a message larger than the task's largest message is refused (413) without reading it all", async () => {
    const task = await createTask();
    await expectError(
      SELF.fetch(`http://edge/v1/tasks/${task}/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: new Uint8Array(600_000),
      }),
      413,
      /larger than/,
    );
    // A masked input of the wrong size is refused from its frame header, before it is decoded or verified.
    const d = await SecAggDevice.enrolled(edge, task, 'sizer', TOKEN);
    await d.send(await d.advertise());
    const wrong = encodeMessage({
      stage: 'masked-input',
      roundId: (await d.info()).roundId,
      from: 'sizer',
      signature: new Uint8Array(64),
      masked: new Uint32Array(1000),
    });
    await expectError(d.send(wrong), 400, /masked input of this round is 16 words/);
  });
});

describe('a slow body does not hold the task', () => {
  it("while one message trickles in, relays and close-stage answer at once (the body is read before the task's queue)", async () => {
    const task = await createTask();
    const d = await SecAggDevice.enrolled(edge, task, 'prompt', TOKEN);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const trickle = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1]));
        timer = setTimeout(() => controller.close(), 4000);
      },
    });
    const slow = SELF.fetch(`http://edge/v1/tasks/${task}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: trickle,
      duplex: 'half',
    } as RequestInit);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await expectError(d.relayRes('broadcast'), 425, /still open/);
    expect((await post(`/v1/tasks/${task}/close-stage`, {})).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await slow).status).toBe(400); // one byte is no message: refused once it has all arrived
    clearTimeout(timer);
  });
});

describe('one device cannot wedge a task', () => {
  it("an unmask share at x = 0 or with a short y is refused (422); the others' unmasks stand, also after a restart, and the round ends with a reason", async () => {
    const task = await createTask();
    const { devices, unmasks } = await upToUnmask(task, 3);
    const cheater = devices[0]!;
    const zeroX = await cheater.resign({ ...unmasks[0]!, shares: unmasks[0]!.shares.map((s) => ({ ...s, x: 0 })) });
    await expectError(cheater.send(zeroX), 422, /must be at x = /);
    const shortY = await cheater.resign({
      ...unmasks[0]!,
      shares: unmasks[0]!.shares.map((s) => ({ ...s, y: s.y.subarray(0, 5) })),
    });
    await expectError(cheater.send(shortY), 422, /must be 32 bytes, got 5/);
    // A restart of the task's object in the middle changes nothing.
    await evictDurableObject(env.FEDERATED_TASK.getByName(task));
    for (const [i, d] of devices.entries()) if (i > 0) expect((await d.send(unmasks[i]!)).status).toBe(202);
    // The cheater never answered well: the stage closes at its deadline (here: now). With k = 2 its missing shares
    // leave one of t = 2 for the others' seeds: the round ends with that reason and the next one starts.
    expect((await post(`/v1/tasks/${task}/close-stage`, {})).status).toBe(200);
    const s = await status(task);
    // The public status names no device; the admin's view says whose.
    expect(s.history[0]).toMatchObject({
      status: 'abandoned',
      reason: "only 1 shares of a survivor's self mask arrived; 2 are needed",
    });
    expect(JSON.stringify(s)).not.toMatch(/dev-\d/);
    const admin = (await (await SELF.fetch(`http://edge/v1/tasks/${task}`, { headers: ADMIN })).json()) as TaskStatus;
    expect(admin.history[0]!.detail).toMatch(/only 1 shares of dev-\d's self mask arrived; 2 are needed/);
    expect(s).toMatchObject({ round: 2, stage: 'advertise-keys' });
    expect((await devices[1]!.relayRes('broadcast', 2)).status).toBe(425);
  });

  it('when the good shares do not suffice, the round is abandoned with the reason and the next one starts', async () => {
    const task = await createTask();
    const { devices, unmasks } = await upToUnmask(task, 3);
    const lies = await devices[0]!.resign({
      ...unmasks[0]!,
      shares: unmasks[0]!.shares.map((s) => ({ ...s, y: s.y.map((b) => b ^ 1) })),
    });
    expect((await devices[0]!.send(lies)).status).toBe(202);
    expect((await devices[1]!.send(unmasks[1]!)).status).toBe(202);
    expect((await devices[2]!.send(unmasks[2]!)).status).toBe(202); // the last honest unmask: was a 500
    const s = await status(task);
    expect(s.history[0]).toMatchObject({ status: 'abandoned', reason: expect.stringMatching(/do not reconstruct it/) });
    expect(s).toMatchObject({ round: 2, stage: 'advertise-keys' });
    expect((await devices[0]!.relayRes('broadcast', 2)).status).toBe(425); // relays answer
    expect((await post(`/v1/tasks/${task}/close-stage`, {})).status).toBe(200);
  });

  it('a masked input no honest device could send (every word ±0.8·2³¹) abandons the round it is in, saying why; nothing is published and the next round starts', async () => {
    const task = await createTask();
    const devices = await Promise.all([0, 1, 2].map((i) => SecAggDevice.enrolled(edge, task, `dev-${i}`, TOKEN)));
    for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
    for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
    const info = await devices[0]!.info();
    const weightsBefore = await (await SELF.fetch(`http://edge/v1/tasks/${task}/weights`)).arrayBuffer();
    for (const [i, d] of devices.entries()) {
      const words =
        i === 0
          ? new Uint32Array(info.length).map((_, j) => (j % 2 ? 0.8 * 2 ** 31 : -0.8 * 2 ** 31) >>> 0)
          : encodeUpdate(new Float32Array(D).fill(0.01), 10, info.fixedPoint);
      expect((await d.send(await d.masked(words))).status).toBe(202);
    }
    for (const d of devices) expect((await d.send(await d.unmask())).status).toBe(202);
    const s = await status(task);
    expect(s.history[0]).toMatchObject({
      status: 'abandoned',
      reason: expect.stringMatching(
        /the round's sum is not one its 3 devices could have sent: (its total weight|coordinate)/,
      ),
    });
    expect(s.publishedVersions).toEqual([]);
    expect(s).toMatchObject({ round: 2, stage: 'advertise-keys' });
    expect(await (await SELF.fetch(`http://edge/v1/tasks/${task}/weights`)).arrayBuffer()).toEqual(weightsBefore);
  });
});
