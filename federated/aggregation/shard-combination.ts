/**
 * Combining a sharded round's shard sums robustly. Each shard's unmasked sum is already known to the coordinator
 * (that is what sharding reveals — Bonawitz et al., SysML 2019, §4), so combining them robustly costs no privacy
 * beyond sharding's: every shard's mean is clipped to SHARD_NORM_FACTOR × the median of the shard means' norms
 * before the weighted average (norm bounding, Sun et al. 2019, "Can You Really Backdoor Federated Learning?", here
 * against the median rather than a fixed bound, as in Pillutla et al.'s robust aggregation). One shard that one
 * device dominates then moves the round by at most what a shard of twice the typical norm could; honest shards,
 * whose norms sit near the median, are left as they are. Fewer than MIN_ROBUST_SHARDS published: the median would
 * be the attacker's to set, and the plain weighted mean is used. Pure.
 */
import type { WeightedTotal } from './update-codec.ts';

/** A shard's mean may be this many times the median shard mean's norm. */
export const SHARD_NORM_FACTOR = 2;
/** Fewest published shards the median is taken over. */
export const MIN_ROBUST_SHARDS = 3;

const norm = (v: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
};

/**
 * The weighted mean of the shards' means, each clipped to SHARD_NORM_FACTOR × their median norm (with at least
 * MIN_ROBUST_SHARDS shards), and how many were clipped. Shards of no weight are left out.
 */
export function combineShards(parts: WeightedTotal[]): { mean: Float32Array; clipped: number } {
  const usable = parts.filter((p) => p.weight > 0);
  if (!usable.length) throw new RangeError('no shard carries any weight');
  const d = usable[0]!.total.length;
  const means = usable.map((p) => Float64Array.from(p.total, (v) => v / p.weight));
  const norms = means.map(norm);
  const sorted = [...norms].sort((a, b) => a - b);
  const median =
    sorted.length % 2
      ? sorted[(sorted.length - 1) / 2]!
      : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const bound = usable.length >= MIN_ROBUST_SHARDS ? SHARD_NORM_FACTOR * median : Number.POSITIVE_INFINITY;
  const acc = new Float64Array(d);
  let weight = 0,
    clipped = 0;
  for (const [j, m] of means.entries()) {
    const scale = norms[j]! > bound ? bound / norms[j]! : 1;
    if (scale < 1) clipped++;
    const w = usable[j]!.weight;
    for (let i = 0; i < d; i++) acc[i]! += w * scale * m[i]!;
    weight += w;
  }
  return { mean: Float32Array.from(acc, (v) => v / weight), clipped };
}
