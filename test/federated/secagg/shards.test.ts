/**
 * Sharded SecAgg+ (federated/secagg/shards.ts): the shard plan, the public hash assignment and its capacity, and
 * whole sharded rounds — each shard a SecAgg+ instance, the coordinator adding the shards' unmasked sums.
 */
import { describe, expect, it } from 'vitest';
import { secAggParameters } from '../../../federated/secagg/parameters.ts';
import { sha256 } from '../../../federated/secagg/primitives.ts';
import { assignShards, shardOf, shardPlan, shardSecAggParameters } from '../../../federated/secagg/shards.ts';
import { utf8 } from '../../../federated/bytes.ts';
import { exactSum, makeIdentities, roundConfig, runRound } from './secagg-harness.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `device-${String(i).padStart(5, '0')}`);
/** Fixed seeds, so every run checks the same assignments (nothing here is flaky). */
const seedOf = (label: string) => sha256(utf8(`shards.test/${label}`));

describe('shardPlan', () => {
  it('plans ceil(n / (0.8 · shardSize)) shards of capacity shardSize', () => {
    expect(shardPlan(1000, 100)).toEqual({ count: 13, capacity: 100 });
    expect(shardPlan(500, 100)).toEqual({ count: 7, capacity: 100 });
    expect(shardPlan(80, 100)).toEqual({ count: 1, capacity: 100 });
    expect(shardPlan(81, 100)).toEqual({ count: 2, capacity: 100 });
    expect(shardPlan(1, 1)).toEqual({ count: 2, capacity: 1 });
  });

  it('refuses non-positive or non-integer sizes', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => shardPlan(bad, 100)).toThrow(RangeError);
      expect(() => shardPlan(100, bad)).toThrow(RangeError);
    }
  });
});

describe('shardOf / assignShards', () => {
  it('is a deterministic function of the seed: anyone with the seed recomputes every device’s shard', async () => {
    const seed = await seedOf('a');
    const devices = ids(300);
    const plan = shardPlan(300, 50);
    const a = await assignShards(devices, seed, plan);
    expect(await assignShards(devices, seed.slice(), plan)).toEqual(a);
    for (const [i, shard] of a.shards.entries())
      for (const d of shard) expect(await shardOf(seed, d, plan.count)).toBe(i);
    expect(a.shards.flat().length + a.overflow.length).toBe(300);
    expect(new Set([...a.shards.flat(), ...a.overflow]).size).toBe(300);
  });

  it('different seeds give different assignments', async () => {
    const devices = ids(1000);
    const plan = shardPlan(1000, 100);
    const a = await assignShards(devices, await seedOf('a'), plan);
    const b = await assignShards(devices, await seedOf('b'), plan);
    const shardA = new Map(a.shards.flatMap((s, i) => s.map((d) => [d, i] as const)));
    const shardB = new Map(b.shards.flatMap((s, i) => s.map((d) => [d, i] as const)));
    const same = devices.filter((d) => shardA.has(d) && shardA.get(d) === shardB.get(d)).length;
    // Independent assignments agree on ≈ 1/13 of the devices (≈ 77, std ≈ 8).
    expect(same).toBeGreaterThan(40);
    expect(same).toBeLessThan(120);
  });

  it('never puts more than capacity devices in a shard; the first to check in keep their places', async () => {
    const devices = ids(200);
    // 2 shards of 10 for 200 devices: almost everyone overflows.
    const { shards, overflow } = await assignShards(devices, await seedOf('tight'), { count: 2, capacity: 10 });
    expect(shards.map((s) => s.length)).toEqual([10, 10]);
    expect(overflow.length).toBe(180);
    const seed = await seedOf('tight');
    for (const [i, shard] of shards.entries()) {
      const firstTen = [];
      for (const d of devices) if ((await shardOf(seed, d, 2)) === i && firstTen.length < 10) firstTen.push(d);
      expect(shard).toEqual(firstTen);
    }
  });

  it('1,000 devices in shards of 100 (13 shards, expected load 76.9): no shard overfills in ≥ 90 % of rounds, and overflow is a few devices when one does', async () => {
    // P(Bin(1000, 1/13) > 100) ≈ 0.35 % per shard, so ≈ 4.4 % of rounds overflow at all (shards.ts): over 200
    // seeds, ≈ 9 rounds (the chance of more than 20 is 3·10^-4). Zero overflow for every seed is not what the
    // math gives, so it is not what this test claims.
    const devices = ids(1000);
    const plan = shardPlan(1000, 100);
    let roundsWithOverflow = 0,
      overflowed = 0,
      largest = 0;
    for (let s = 0; s < 200; s++) {
      const { shards, overflow } = await assignShards(devices, await seedOf(`load-${s}`), plan);
      for (const shard of shards) expect(shard.length).toBeLessThanOrEqual(100);
      if (overflow.length > 0) roundsWithOverflow++;
      overflowed += overflow.length;
      largest = Math.max(largest, overflow.length);
    }
    expect(roundsWithOverflow).toBeLessThanOrEqual(20);
    // Expected 0.15 overflowing devices per round: 30 over 200 rounds; allow 3×.
    expect(overflowed).toBeLessThanOrEqual(90);
    expect(largest).toBeLessThanOrEqual(15);
  });

  it('refuses bad inputs', async () => {
    const seed = await seedOf('a');
    await expect(shardOf(seed, 'x', 0)).rejects.toThrow(RangeError);
    await expect(shardOf(seed, 'x', 2.5)).rejects.toThrow(RangeError);
    await expect(shardOf(new Uint8Array(8), 'x', 3)).rejects.toThrow(RangeError);
    await expect(shardOf(seed, '', 3)).rejects.toThrow(RangeError);
    await expect(assignShards(['a', 'b', 'a'], seed, { count: 2, capacity: 5 })).rejects.toThrow(/distinct/);
    await expect(assignShards(['a'], seed, { count: 2, capacity: 0 })).rejects.toThrow(RangeError);
    await expect(assignShards(['a'], seed, { count: -1, capacity: 5 })).rejects.toThrow(RangeError);
  });
});

describe('sharded SecAgg+ rounds', () => {
  it('60 devices, shards of ≤ 20, 30 % dropout after key sharing, d = 1,000: the sum of the shards’ unmasked sums is the exact sum of the survivors’ inputs (mod 2^32)', async () => {
    const d = 1000,
      dropout = 0.3;
    const identities = await makeIdentities(60);
    const byId = new Map(identities.map((x) => [x.id, x]));
    const inputs = new Map(identities.map((x) => [x.id, crypto.getRandomValues(new Uint32Array(d))]));
    const plan = shardPlan(60, 20);
    const { shards, overflow } = await assignShards(
      identities.map((x) => x.id),
      await seedOf('e2e'),
      plan,
    );
    expect(plan.count).toBe(4);
    const total = new Uint32Array(d);
    const survivors: string[] = [];
    for (const [i, shard] of shards.entries()) {
      // Each shard is its own SecAgg+ instance: k and t for its size, its own round id and graph seed.
      const { neighbours, threshold } = secAggParameters({ devices: shard.length, dropoutRate: dropout });
      const config = roundConfig({
        roundId: `e2e-shard-${i}`,
        graphSeed: await seedOf(`e2e-graph-${i}`),
        neighbours,
        threshold,
        length: d,
      });
      const gone = new Set(shard.slice(0, Math.round(dropout * shard.length)));
      const run = await runRound(
        config,
        shard.map((id) => byId.get(id)!),
        inputs,
        { beforeMasked: gone },
      );
      expect(run.result.dropped.sort()).toEqual([...gone].sort());
      expect(run.result.sum).toEqual(exactSum(inputs, run.result.survivors, d));
      for (let j = 0; j < d; j++) total[j] = (total[j]! + run.result.sum[j]!) >>> 0;
      survivors.push(...run.result.survivors);
    }
    // Overflowed devices sat this round out; dropped ones contributed nothing.
    for (const id of overflow) expect(survivors).not.toContain(id);
    expect(survivors.length).toBe(shards.reduce((n, s) => n + s.length - Math.round(dropout * s.length), 0));
    expect(total).toEqual(exactSum(inputs, survivors, d));
  });
});

describe('shardSecAggParameters', () => {
  it("sizes k and t for a shard's expected load, with k even so every shard up to capacity can build its graph", () => {
    // 1,000 devices in shards of ≤ 100: 13 shards of ~77; the complete graph of 77 would be k = 76.
    const p = shardSecAggParameters({ devicesPerRound: 1000, shardSize: 100, dropoutRate: 0.3 });
    expect(p.neighbours).toBe(76);
    expect(p.threshold).toBe(39);
    for (const [n, S] of [
      [500, 100],
      [1000, 100],
      [3000, 250],
      [400, 60],
    ] as const) {
      const q = shardSecAggParameters({ devicesPerRound: n, shardSize: S, dropoutRate: 0.3 });
      expect(q.neighbours % 2 === 0 || q.neighbours >= S - 1).toBe(true);
      expect(q.threshold).toBeGreaterThan(q.neighbours / 2);
      expect(q.neighbours).toBeLessThan(S);
    }
    // Not sharded: the round's own parameters.
    expect(shardSecAggParameters({ devicesPerRound: 100, shardSize: 100, dropoutRate: 0.3 })).toEqual(
      secAggParameters({ devices: 100, dropoutRate: 0.3 }),
    );
  });
});
