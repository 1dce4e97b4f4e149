/**
 * Robust combination of shard sums (federated/aggregation/shard-combination.ts): honest shards give their exact
 * weighted mean; one shard blown up within its own sum's bounds moves the round by at most SHARD_NORM_FACTOR ×
 * the median shard's norm; with fewer than three shards the plain weighted mean is used.
 */
import { describe, expect, it } from 'vitest';
import { SHARD_NORM_FACTOR, combineShards } from '../../../federated/aggregation/shard-combination.ts';

const shard = (value: number, weight: number, d = 4) => ({ total: new Float64Array(d).fill(value * weight), weight });

describe('combineShards', () => {
  it('gives the exact weighted mean of honest shards of similar norms', () => {
    const { mean, clipped } = combineShards([shard(0.1, 2), shard(0.12, 3), shard(0.09, 5)]);
    expect(clipped).toBe(0);
    for (const v of mean) expect(v).toBeCloseTo((0.1 * 2 + 0.12 * 3 + 0.09 * 5) / 10, 6);
  });

  it('clips a shard 1,000 times the others to twice the median norm', () => {
    const { mean, clipped } = combineShards([shard(0.1, 3), shard(0.1, 3), shard(0.1, 3), shard(100, 3)]);
    expect(clipped).toBe(1);
    // The attacker's shard counts as a mean of norm 2 × 0.2 (the median's), not 200.
    for (const v of mean) expect(v).toBeCloseTo((0.1 * 9 + 0.1 * SHARD_NORM_FACTOR * 3) / 12, 6);
  });

  it('uses the plain weighted mean with fewer than three shards, and leaves out shards of no weight', () => {
    const { mean, clipped } = combineShards([shard(0.1, 1), shard(100, 1), { total: new Float64Array(4), weight: 0 }]);
    expect(clipped).toBe(0);
    for (const v of mean) expect(v).toBeCloseTo(50.05, 4);
    expect(() => combineShards([{ total: new Float64Array(4), weight: 0 }])).toThrow(RangeError);
  });
});
