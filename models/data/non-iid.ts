/**
 * The pathological non-IID split of McMahan et al. 2017 (§3, "Pathological Non-IID"): sort the digits by label,
 * cut them into 2·devices shards, give each device two shards — so most devices hold examples of only two digits.
 */
import type { LabelledSet } from './mnist.ts';
import { shuffledIndices } from '../../federated/seeded-random.ts';

export function nonIidShards(set: LabelledSet, devices: number, seed = 1): LabelledSet[] {
  const byLabel = Array.from({ length: set.n }, (_, i) => i).sort((a, b) => set.y[a]! - set.y[b]! || a - b);
  const shards = 2 * devices;
  const size = Math.floor(set.n / shards);
  const order = shuffledIndices(shards, seed);
  return Array.from({ length: devices }, (_, d) => {
    const idx = [order[2 * d]!, order[2 * d + 1]!].flatMap((s) => byLabel.slice(s * size, (s + 1) * size));
    const x = new Float32Array(idx.length * 784);
    idx.forEach((i, k) => x.set(set.x.subarray(i * 784, (i + 1) * 784), k * 784));
    return { x, y: Int32Array.from(idx, (i) => set.y[i]!), n: idx.length, features: set.features };
  });
}
