/**
 * Label-skewed non-IID split by a Dirichlet distribution (Hsu, Qi & Brown 2019, "Measuring the Effects of Non-Identical
 * Data Distribution for Federated Visual Classification", §3): for every class, the share each device gets of that
 * class's examples is drawn from Dir(α, …, α) — small α gives devices a few dominant digits, α → ∞ the IID split.
 * As Flower's DirichletPartitioner does, a draw that leaves a device with fewer than `minExamples` is redrawn.
 * Seeded, so a scenario's split is the same in every run.
 */
import { type LabelledSet, subset } from './mnist.ts';
import { seededRandom, shuffledIndices } from '../../federated/seeded-random.ts';

/** Gamma(shape, 1) by Marsaglia & Tsang (2000), with the shape < 1 boost Gamma(a) = Gamma(a + 1) · U^(1/a). */
function gamma(shape: number, rand: () => number): number {
  if (shape < 1) return gamma(shape + 1, rand) * rand() ** (1 / shape);
  const d = shape - 1 / 3,
    c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number, v: number;
    do {
      // Standard normal by Box–Muller.
      x = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rand();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function dirichlet(alpha: number, k: number, rand: () => number): number[] {
  const g = Array.from({ length: k }, () => gamma(alpha, rand));
  const sum = g.reduce((a, b) => a + b, 0);
  return g.map((v) => v / sum);
}

export function dirichletShards(
  set: LabelledSet,
  devices: number,
  o: { alpha: number; seed?: number; minExamples?: number },
): LabelledSet[] {
  const rand = seededRandom(o.seed ?? 1);
  const min = o.minExamples ?? 10;
  const classes = Math.max(...set.y) + 1;
  const order = shuffledIndices(set.n, o.seed ?? 1);
  const byClass = Array.from({ length: classes }, (_, c) => order.filter((i) => set.y[i] === c));
  for (let attempt = 0; attempt < 1000; attempt++) {
    const members: number[][] = Array.from({ length: devices }, () => []);
    for (const idx of byClass) {
      const p = dirichlet(o.alpha, devices, rand);
      // Cut the class's examples at the cumulative shares.
      let start = 0,
        acc = 0;
      p.forEach((share, d) => {
        acc += share;
        const end = d === devices - 1 ? idx.length : Math.round(acc * idx.length);
        members[d]!.push(...idx.slice(start, end));
        start = end;
      });
    }
    if (members.every((m) => m.length >= min)) return members.map((m) => subset(set, m));
  }
  throw new RangeError(
    `no Dirichlet(α = ${o.alpha}) split of ${set.n} examples gives each of ${devices} devices ${min} examples`,
  );
}
