/**
 * The Dirichlet label-skew split the finetune scenario gives its devices: every example goes to exactly one device,
 * every device gets at least the minimum, the split is the same for the same seed, and α sets how skewed it is.
 */
import { describe, expect, it } from 'vitest';
import { dirichletShards } from '../../../models/data/dirichlet-split.ts';
import { loadMnist, slice } from '../../../models/data/mnist.ts';

const pool = slice(loadMnist().train, 2000, 8000);
/** Mean over devices of the share of its examples that its most frequent label has. */
function dominance(shards: ReturnType<typeof dirichletShards>): number {
  return (
    shards.reduce((sum, s) => {
      const counts = new Array(10).fill(0);
      for (const y of s.y) counts[y]++;
      return sum + Math.max(...counts) / s.n;
    }, 0) / shards.length
  );
}

describe('Dirichlet label-skew split', () => {
  it('gives every example to exactly one device, each at least the minimum, the same for the same seed', () => {
    const a = dirichletShards(pool, 100, { alpha: 0.5, seed: 3, minExamples: 10 });
    expect(a).toHaveLength(100);
    expect(a.reduce((n, s) => n + s.n, 0)).toBe(pool.n);
    for (const s of a) expect(s.n).toBeGreaterThanOrEqual(10);
    const labels = new Array(10).fill(0),
      want = new Array(10).fill(0);
    for (const s of a) for (const y of s.y) labels[y]++;
    for (const y of pool.y) want[y]++;
    expect(labels).toEqual(want);
    const b = dirichletShards(pool, 100, { alpha: 0.5, seed: 3, minExamples: 10 });
    expect(b.map((s) => Array.from(s.y))).toEqual(a.map((s) => Array.from(s.y)));
  });

  it('small α skews each device towards a few digits; large α is close to the IID mix', () => {
    const skewed = dominance(dirichletShards(pool, 100, { alpha: 0.1, minExamples: 1 }));
    const half = dominance(dirichletShards(pool, 100, { alpha: 0.5 }));
    const iid = dominance(dirichletShards(pool, 100, { alpha: 1000 }));
    expect(skewed).toBeGreaterThan(half);
    expect(half).toBeGreaterThan(iid);
    expect(iid).toBeLessThan(0.25); // ten digits at ~10 % each, plus sampling noise on ~60 examples
    expect(skewed).toBeGreaterThan(0.6);
  });

  it('refuses a split no draw can give', () => {
    expect(() => dirichletShards(slice(pool, 0, 100), 50, { alpha: 0.5, minExamples: 10 })).toThrow(RangeError);
  });
});
