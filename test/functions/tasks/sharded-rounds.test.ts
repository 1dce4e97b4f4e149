/**
 * Sharded rounds inside workerd (issue 20, point 1), against the real FederatedTask (coordinator) and
 * ShardAggregator Durable Objects: a round of more devices than shardSize is split by a seed drawn at check-in
 * close into disjoint shards of at most shardSize, each a complete SecAgg+ instance in its own object; the task
 * publishes the mean over every published shard's survivors, and a shard that fails costs only its own devices.
 * The assignment is random per round, so the tests read each device's shard from its roster.
 */
import { SELF, env, listDurableObjectIds } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { clientShareKeys } from '../../../federated/secagg/client.ts';
import { encodeUpdate } from '../../../federated/secagg/fixed-point.ts';
import type { KeysBroadcast } from '../../../federated/secagg/messages.ts';
import { type TaskStatus, relayFromJson } from '../../../federated/aggregation/task-protocol.ts';
import { shardPlan } from '../../../federated/secagg/shards.ts';
import { uniqueName } from '../helpers.ts';
import { D, TOKEN, edge, expectError, post, taskBody } from './fixtures.ts';
import { SecAggDevice } from '../../drivers/secagg-device.ts';

const DEVICES = 30;
const SHARD = 10;
// k = 4, t = 3 per shard: a shard needs max(minDevices 3, t + 1) = 4 devices; 30 devices in 4 shards of ≤ 10.
const settings = {
  devicesPerRound: DEVICES,
  shardSize: SHARD,
  minDevices: 3,
  secagg: { neighbours: 4, threshold: 3 },
  rounds: 2,
};

const status = async (task: string) => (await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as TaskStatus;
/** The task's status once round 1 has ended (the shards report to the coordinator on their own time). */
async function settled(task: string): Promise<TaskStatus> {
  let s = await status(task);
  for (let i = 0; i < 50 && s.history[0]!.status === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    s = await status(task);
  }
  return s;
}
const weightsOf = async (task: string) =>
  new Float32Array(await (await SELF.fetch(`http://edge/v1/tasks/${task}/weights`)).arrayBuffer());

/** Everyone checks in; returns each device that got a shard with its roster (the others overflowed or sat in too small a shard). */
async function checkIn(task: string) {
  const devices = await Promise.all(
    Array.from({ length: DEVICES }, (_, i) =>
      SecAggDevice.enrolled(edge, task, `dev-${String(i).padStart(2, '0')}`, TOKEN),
    ),
  );
  for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
  const placed: { device: SecAggDevice; roster: string[] }[] = [];
  const refused: string[] = [];
  for (const d of devices) {
    const res = await d.relayRes('broadcast');
    if (res.status === 422) {
      refused.push(((await res.json()) as { error: string }).error);
      continue;
    }
    expect(res.status).toBe(200);
    const broadcast: KeysBroadcast = relayFromJson.broadcast((await res.json()) as never);
    const { state, message } = await clientShareKeys(d.state!, broadcast);
    d.state = state;
    expect((await d.send(message)).status).toBe(202);
    placed.push({ device: d, roster: broadcast.roster });
  }
  return { devices, placed, refused };
}

const updateOf = (i: number) => new Float32Array(D).fill(0.01 * (i + 1));

describe('sharded rounds', () => {
  it('a round of 30 devices with shardSize 10 runs as disjoint shards of ≤ 10 in parallel aggregators; the task publishes the mean over all shards', async () => {
    const task = uniqueName('shard');
    const created = await post('/v1/tasks', taskBody(task, settings));
    expect(created.status, await created.clone().text()).toBe(201);
    const aggregatorsBefore = (await listDurableObjectIds(env.SHARD_AGGREGATOR)).length;
    const { placed, refused } = await checkIn(task);
    // Rosters: disjoint, each ≤ shardSize, at most the planned number of shards.
    const rosters = [...new Set(placed.map((p) => p.roster.join(',')))].map((r) => r.split(','));
    expect(rosters.length).toBeGreaterThanOrEqual(2);
    expect(rosters.length).toBeLessThanOrEqual(shardPlan(DEVICES, SHARD).count);
    for (const r of rosters) expect(r.length).toBeLessThanOrEqual(SHARD);
    expect(new Set(rosters.flat()).size).toBe(rosters.flat().length);
    expect(placed.length + refused.length).toBe(DEVICES);
    for (const why of refused)
      expect(why).toMatch(/shard was full|shard in round 1 was abandoned: \d devices landed in this shard/);
    for (const p of placed) expect(p.roster).toContain(p.device.identity.id);
    expect((await listDurableObjectIds(env.SHARD_AGGREGATOR)).length - aggregatorsBefore).toBeGreaterThanOrEqual(
      rosters.length,
    );

    // While the shards run, the task's status lists them as running (the coordinator has no device counts yet).
    const running = (await status(task)).history[0]!;
    expect(running.status).toBe('running');
    expect(
      running
        .shards!.filter((x) => x.status === 'running')
        .map((x) => x.devices)
        .sort(),
    ).toEqual(rosters.map((r) => r.length).sort());

    const info = await placed[0]!.device.info();
    const index = (d: SecAggDevice) => Number(d.identity.id.slice(4));
    for (const { device } of placed)
      expect(
        (await device.send(await device.masked(encodeUpdate(updateOf(index(device)), 10, info.fixedPoint)))).status,
      ).toBe(202);
    const before = await weightsOf(task);
    for (const { device } of placed) expect((await device.send(await device.unmask())).status).toBeLessThan(300);

    const s = await status(task);
    const round = s.history[0]!;
    expect(round.status, round.reason).toBe('published');
    expect(
      round
        .shards!.filter((x) => x.status === 'published')
        .map((x) => x.devices)
        .sort(),
    ).toEqual(rosters.map((r) => r.length).sort());
    expect(round.shards!.reduce((n, x) => n + x.survivors, 0)).toBe(placed.length);
    expect(round.unmasked).toBe(placed.length);
    // FedAvg (server learning rate 1): the new weights are the old plus the mean update of every shard's survivors.
    const mean = placed.reduce((m, p) => m + 0.01 * (index(p.device) + 1), 0) / placed.length;
    const after = await weightsOf(task);
    for (let i = 0; i < D; i++) expect(after[i]! - before[i]!).toBeCloseTo(mean, 4);
    expect(s.round).toBe(2);
    expect(s.stage).toBe('advertise-keys');
  });

  it('a shard whose devices all drop is abandoned with its reason; the other shards still publish the round', async () => {
    const task = uniqueName('shard-drop');
    expect((await post('/v1/tasks', taskBody(task, settings))).status).toBe(201);
    const { placed } = await checkIn(task);
    const rosters = [...new Set(placed.map((p) => p.roster.join(',')))];
    expect(rosters.length).toBeGreaterThanOrEqual(2);
    const gone = new Set(rosters[0]!.split(','));
    const staying = placed.filter((p) => !gone.has(p.device.identity.id));
    const info = await staying[0]!.device.info();
    for (const { device } of staying)
      expect((await device.send(await device.masked(encodeUpdate(updateOf(0), 10, info.fixedPoint)))).status).toBe(202);
    for (const { device } of staying) expect((await device.send(await device.unmask())).status).toBeLessThan(300);
    // The dropped shard's masked-input stage waits for its deadline: the operator closes it now.
    expect((await post(`/v1/tasks/${task}/close-stage`, {})).status).toBe(200);
    const s = await settled(task);
    const round = s.history[0]!;
    // close-stage on the task finishes the round with the shards that reported; the silent one counts as abandoned.
    expect(round.status, round.reason).toBe('published');
    expect(round.shards!.filter((x) => x.status === 'abandoned').length).toBeGreaterThanOrEqual(1);
    expect(round.shards!.reduce((n, x) => n + x.survivors, 0)).toBe(staying.length);
    expect(round.dropouts).toBe(DEVICES - staying.length);
  });

  it("one device that masks a weight of 0x80000000 (Σw ≤ 0) costs only its own shard: dropped with the reason, the round publishes the others' mean", async () => {
    const task = uniqueName('shard-attack');
    expect((await post('/v1/tasks', taskBody(task, settings))).status).toBe(201);
    const { placed } = await checkIn(task);
    const rosters = [...new Set(placed.map((p) => p.roster.join(',')))];
    expect(rosters.length).toBeGreaterThanOrEqual(2);
    const attacker = placed[0]!;
    const info = await attacker.device.info();
    const index = (d: SecAggDevice) => Number(d.identity.id.slice(4));
    for (const { device } of placed) {
      const words = encodeUpdate(updateOf(index(device)), 10, info.fixedPoint);
      if (device === attacker.device) words[D] = 0x80000000;
      expect((await device.send(await device.masked(words))).status).toBe(202);
    }
    const before = await weightsOf(task);
    for (const { device } of placed) expect((await device.send(await device.unmask())).status).toBeLessThan(300);
    const s = await settled(task);
    const round = s.history[0]!;
    expect(round.status, round.reason).toBe('published');
    // (A shard too small to start is abandoned at check-in, as always: not the attacker's doing.)
    const dropped = round.shards!.filter((x) => x.status === 'abandoned' && /its sum is not one/.test(x.reason ?? ''));
    expect(dropped.map((x) => x.devices)).toEqual([attacker.roster.length]);
    expect(dropped[0]!.reason).toMatch(/its sum is not one its \d+ devices could have sent: .*holds no examples/);
    // The published mean is the honest shards' alone.
    const honest = placed.filter((p) => !attacker.roster.includes(p.device.identity.id));
    const mean = honest.reduce((m, p) => m + 0.01 * (index(p.device) + 1), 0) / honest.length;
    const after = await weightsOf(task);
    for (let i = 0; i < D; i++) expect(after[i]! - before[i]!).toBeCloseTo(mean, 4);
  });

  it("one device that stays within its shard's sum bounds but sends five clips' worth: its shard is clipped to twice the median shard's norm", async () => {
    const task = uniqueName('shard-robust');
    expect((await post('/v1/tasks', taskBody(task, settings))).status).toBe(201);
    const { placed } = await checkIn(task);
    expect(new Set(placed.map((p) => p.roster.join(','))).size).toBeGreaterThanOrEqual(3);
    const attacker = placed[0]!.device;
    const info = await attacker.info();
    const index = (d: SecAggDevice) => Number(d.identity.id.slice(4));
    for (const { device } of placed) {
      const words =
        device === attacker
          ? encodeUpdate(new Float32Array(D).fill(1), 10, info.fixedPoint).map((w, i) => (i < D ? 5 * w : w))
          : encodeUpdate(updateOf(index(device)), 10, info.fixedPoint);
      expect((await device.send(await device.masked(words))).status).toBe(202);
    }
    const before = await weightsOf(task);
    for (const { device } of placed) expect((await device.send(await device.unmask())).status).toBeLessThan(300);
    const s = await settled(task);
    expect(s.history[0]!.status, s.history[0]!.reason).toBe('published');
    // The plain mean would carry the attacker's 5 in full; the robust one only its clipped shard.
    const honest = placed.filter((p) => p.device !== attacker).map((p) => 0.01 * (index(p.device) + 1));
    const plain = (honest.reduce((a, b) => a + b, 0) + 5) / placed.length;
    const honestMean = honest.reduce((a, b) => a + b, 0) / honest.length;
    const after = await weightsOf(task);
    for (let i = 0; i < D; i++) {
      const moved = after[i]! - before[i]!;
      expect(moved).toBeLessThan(honestMean + 0.6 * (plain - honestMean));
      expect(moved).toBeGreaterThan(honestMean - 0.02);
    }
  });

  it("messages and relays for a sharded round reach only the sender's shard; one device cannot speak in another shard", async () => {
    const task = uniqueName('shard-iso');
    expect((await post('/v1/tasks', taskBody(task, settings))).status).toBe(201);
    const { placed } = await checkIn(task);
    const a = placed[0]!;
    const other = placed.find((p) => !p.roster.includes(a.device.identity.id))!;
    expect(other).toBeDefined();
    // A late check-in after shards started is refused with the reason.
    const late = await SecAggDevice.enrolled(edge, task, 'late', TOKEN);
    await expectError(late.send(await late.advertise()), 422, /check-in for round 1 has closed/);
    // A masked input claiming a device of another shard goes to that device's aggregator, which checks the
    // signature against that device's key: refused, and the genuine one still counts.
    const info = await a.device.info();
    const mine = await a.device.masked(encodeUpdate(updateOf(0), 10, info.fixedPoint));
    await expectError(a.device.send({ ...mine, from: other.device.identity.id }), 403, /bad signature/);
    expect(
      (await other.device.send(await other.device.masked(encodeUpdate(updateOf(1), 10, info.fixedPoint)))).status,
    ).toBe(202);
    expect((await a.device.send(mine)).status).toBe(202);
  });

  it('settings: shardSize below 3 or a threshold a shard cannot reach are refused at creation', async () => {
    await expectError(post('/v1/tasks', taskBody(uniqueName('s'), { ...settings, shardSize: 2 })), 400, /shardSize/);
    await expectError(
      post(
        '/v1/tasks',
        taskBody(uniqueName('s'), { ...settings, shardSize: 4, secagg: { neighbours: 4, threshold: 4 } }),
      ),
      400,
      /threshold 4 needs 5 devices per round, shardSize is 4/,
    );
  });
});

describe('default shardSize', () => {
  it("a round of more than 100 devices is sharded at 100 unless the task says otherwise; k and t follow a shard's expected load", async () => {
    const res = await post(
      '/v1/tasks',
      taskBody(uniqueName('big'), { devicesPerRound: 1000, minDevices: undefined, secagg: undefined }),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    const { settings } = (await res.json()) as {
      settings: { shardSize?: number; secagg: { neighbours: number; threshold: number }; minDevices: number };
    };
    expect(settings.shardSize).toBe(100);
    expect(settings.secagg).toEqual({ neighbours: 76, threshold: 39 });
    expect(settings.minDevices).toBe(40);
    const small = (await (
      await post(
        '/v1/tasks',
        taskBody(uniqueName('small'), { devicesPerRound: 100, minDevices: undefined, secagg: undefined }),
      )
    ).json()) as { settings: { shardSize?: number } };
    expect(small.settings.shardSize).toBeUndefined();
  });
});
