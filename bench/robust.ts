/**
 * npm run bench:robust — what one malicious device (or two) in a round of 20 does to the published model, with and
 * without the task's defences: the server-side sum bounds (federated/aggregation/sum-bounds.ts: a sum its devices
 * could not have sent honestly is dropped) and robust shard combination (shard-combination.ts: rounds in shards of 5,
 * each shard's mean clipped to twice the median shard's norm). A head-sized model (softmax regression on 784 pixels,
 * 7,850 values — the size of a fine-tuned head), 20 devices on the pathological non-IID MNIST split, 10 rounds of
 * FedAvg; every update is encoded by the task's own codec and summed mod 2³² as SecAgg+ sums it (the
 * masks cancel exactly, test/federated/secagg; the bench leaves them out). Attacks, by the device(s) chosen:
 *   blowup    every word ±0.8·2³¹ (issue 31's first measurement)
 *   weight    a weight word of 0x80000000: Σw ≤ 0, the round has nothing to average (the stall)
 *   backdoor  model replacement (Bagdasaryan et al. 2020): trained on its digits plus copies stamped with a 4×4
 *             square and labelled 7, its update boosted ×20 (the round's size) — within the words' range
 * Reported per configuration: clean accuracy on the 2,000 held-out digits, backdoor success (held-out non-7 digits
 * stamped with the square that the model calls 7), rounds published, and the server's aggregation time against the
 * undefended round's in the same run. The defences run on the server only: devices pay nothing extra.
 * Both encodings a task can use: fixed point (per-coordinate clip 1, FedAvg weights) and DDGauss (client-level DP:
 * L2 clip 2, central noise 0.02 — sized, as a task does, for the fewest devices a sum holds: the round's 20, or a shard
 * of 5 with robust shards, so that each shard's sum carries the whole noise). Under DDGauss
 * there is no weight word (no stall attack) and the backdoor bypasses the clip: its boosted update is rotated and
 * rounded by hand, as no honest encoder would.
 * Writes bench/results/robust.json and robust.svg.
 *
 *   BENCH_ROUNDS     rounds per configuration (default 10)
 *   BENCH_ENCODING   fixed, ddgauss or both (default both)
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChartSvg } from '../dev/harness/line-chart.ts';
import { combineShards } from '../federated/aggregation/shard-combination.ts';
import { type UpdateCodec, updateCodec } from '../federated/aggregation/update-codec.ts';
import { ddgaussParameters, rotate } from '../federated/dp/distributed-dp.ts';
import { fixedPointFor } from '../federated/secagg/fixed-point.ts';
import { type LabelledSet, PIXELS, loadMnist } from '../models/data/mnist.ts';
import { nonIidShards } from '../models/data/non-iid.ts';
import { progressBar } from '../models/progress.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const DEVICES = 20;
const SHARD = 5;
const CLASSES = 10;
const D = PIXELS * CLASSES + CLASSES;
const TARGET = 7;
const fp = fixedPointFor({ maxDevices: DEVICES, clip: 1, maxExamples: 400 });
const SEED = new Uint8Array(32);
type Encoding = 'fixed' | 'ddgauss';
/**
 * DDGauss sized as a task sizes it, for the fewest devices a sum holds: a shard of 5 with robust shards, the round's
 * 20 otherwise (the same central noise either way).
 */
const ddFor = (defence: Defence) =>
  ddgaussParameters({
    clip: 2,
    centralNoiseStd: 0.02,
    devices: defence === 'bounds + robust shards' ? SHARD : DEVICES,
    dimension: D,
  });
const codecFor = (encoding: Encoding, defence: Defence): UpdateCodec =>
  updateCodec({
    dimension: D,
    fixedPoint: fp,
    ...(encoding === 'ddgauss' && { distributedDp: ddFor(defence) }),
    seed: SEED,
  });

type Attack = 'none' | 'blowup' | 'weight' | 'backdoor';
type Defence = 'undefended' | 'sum bounds' | 'bounds + robust shards';

/** The trigger: a 4×4 white square in the bottom-right corner. */
function stamp(x: Float32Array, row: number): void {
  for (let r = 23; r < 27; r++) for (let c = 23; c < 27; c++) x[row * PIXELS + r * 28 + c] = 1;
}

/** Softmax regression: W (784×10, row-major) then b (10). Local SGD from `w`, returns the trained weights. */
function train(w: Float32Array, set: LabelledSet, epochs = 2, lr = 0.1, batch = 20): Float32Array {
  const out = w.slice();
  const logits = new Float32Array(CLASSES);
  const grad = new Float32Array(D);
  for (let e = 0; e < epochs; e++)
    for (let start = 0; start < set.n; start += batch) {
      grad.fill(0);
      const end = Math.min(set.n, start + batch);
      for (let i = start; i < end; i++) {
        const off = i * PIXELS;
        for (let k = 0; k < CLASSES; k++) logits[k] = out[PIXELS * CLASSES + k]!;
        for (let p = 0; p < PIXELS; p++) {
          const v = set.x[off + p]!;
          if (v !== 0) for (let k = 0; k < CLASSES; k++) logits[k]! += v * out[p * CLASSES + k]!;
        }
        const max = Math.max(...logits);
        let sum = 0;
        for (let k = 0; k < CLASSES; k++) sum += logits[k] = Math.exp(logits[k]! - max);
        for (let k = 0; k < CLASSES; k++) {
          const g = logits[k]! / sum - (set.y[i] === k ? 1 : 0);
          grad[PIXELS * CLASSES + k]! += g;
          for (let p = 0; p < PIXELS; p++) {
            const v = set.x[off + p]!;
            if (v !== 0) grad[p * CLASSES + k]! += g * v;
          }
        }
      }
      const scale = lr / (end - start);
      for (let j = 0; j < D; j++) out[j]! -= scale * grad[j]!;
    }
  return out;
}

function predict(w: Float32Array, x: Float32Array, row: number): number {
  let best = 0,
    bestScore = -Infinity;
  for (let k = 0; k < CLASSES; k++) {
    let s = w[PIXELS * CLASSES + k]!;
    for (let p = 0; p < PIXELS; p++) s += x[row * PIXELS + p]! * w[p * CLASSES + k]!;
    if (s > bestScore) (bestScore = s), (best = k);
  }
  return best;
}

function evaluate(w: Float32Array, test: LabelledSet): { clean: number; backdoor: number } {
  let right = 0,
    fooled = 0,
    others = 0;
  const stamped = test.x.slice();
  for (let i = 0; i < test.n; i++) {
    if (predict(w, test.x, i) === test.y[i]) right++;
    if (test.y[i] !== TARGET) {
      stamp(stamped, i);
      others++;
      if (predict(w, stamped, i) === TARGET) fooled++;
    }
  }
  return { clean: right / test.n, backdoor: fooled / others };
}

/** The attacker's data: its own digits and as many stamped copies labelled 7. */
function poisoned(set: LabelledSet): LabelledSet {
  const x = new Float32Array(2 * set.n * PIXELS);
  const y = new Int32Array(2 * set.n);
  x.set(set.x);
  x.set(set.x, set.n * PIXELS);
  y.set(set.y);
  for (let i = set.n; i < 2 * set.n; i++) (y[i] = TARGET), stamp(x, i);
  return { x, y, n: 2 * set.n, features: PIXELS };
}

async function maliciousWords(
  attack: Attack,
  encoding: Encoding,
  defence: Defence,
  global: Float32Array,
  data: LabelledSet,
): Promise<Uint32Array> {
  const codec = codecFor(encoding, defence);
  if (attack === 'blowup')
    return new Uint32Array(codec.length).map((_, i) => (i % 2 ? 0.8 * 2 ** 31 : -0.8 * 2 ** 31) >>> 0);
  if (attack === 'weight') {
    const words = await codec.encode(new Float32Array(D), data.n);
    words[D] = 0x80000000;
    return words;
  }
  // Model replacement: its update boosted by the round's size, written straight into the words (no clip).
  const local = train(global, poisoned(data));
  const boosted = Float32Array.from(local, (v, j) => (v - global[j]!) * DEVICES);
  if (encoding === 'ddgauss') {
    const dd = ddFor(defence);
    const rotated = await rotate(boosted, dd.paddedDimension, SEED);
    return Uint32Array.from(rotated, (v) => Math.round(v / dd.gamma) >>> 0);
  }
  const w = Math.min(data.n, fp.maxExamples) / fp.maxExamples;
  const words = new Uint32Array(D + 1);
  for (let j = 0; j < D; j++) words[j] = Math.round(boosted[j]! * w * fp.scale) >>> 0;
  words[D] = Math.round(w * fp.scale) >>> 0;
  return words;
}

const add = (acc: Uint32Array, x: Uint32Array) => {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! + x[i]!) >>> 0;
};

/** One round's aggregation under `defence`: the mean update, or undefined when nothing is published. */
async function aggregate(
  words: Uint32Array[],
  defence: Defence,
  codec: UpdateCodec,
): Promise<Float32Array | undefined> {
  if (defence === 'bounds + robust shards') {
    const parts = [];
    for (let s = 0; s < words.length; s += SHARD) {
      const shard = words.slice(s, s + SHARD);
      const sum = new Uint32Array(codec.length);
      for (const w of shard) add(sum, w);
      if (codec.check(sum, shard.length) === undefined) parts.push(await codec.total(sum, shard.length));
    }
    return parts.some((p) => p.weight > 0) ? combineShards(parts).mean : undefined;
  }
  const sum = new Uint32Array(codec.length);
  for (const w of words) add(sum, w);
  if (defence === 'sum bounds' && codec.check(sum, words.length) !== undefined) return undefined;
  try {
    const mean = await codec.decode(sum, words.length);
    return mean.every(Number.isFinite) ? mean : undefined;
  } catch {
    return undefined;
  }
}

interface Result {
  encoding: Encoding;
  attack: Attack;
  malicious: number;
  defence: Defence;
  clean: number;
  backdoor: number;
  published: number;
  serverMs: number;
  perRound: { clean: number; backdoor: number }[];
}

async function run(
  encoding: Encoding,
  attack: Attack,
  malicious: number,
  defence: Defence,
  devices: LabelledSet[],
  test: LabelledSet,
): Promise<Result> {
  const codec = codecFor(encoding, defence);
  let global = new Float32Array(D);
  let published = 0,
    serverMs = 0;
  const perRound: Result['perRound'] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const words: Uint32Array[] = [];
    for (let d = 0; d < DEVICES; d++) {
      if (d < malicious) words.push(await maliciousWords(attack, encoding, defence, global, devices[d]!));
      else {
        const local = train(global, devices[d]!);
        words.push(
          await codec.encode(
            Float32Array.from(local, (v, j) => v - global[j]!),
            devices[d]!.n,
          ),
        );
      }
    }
    // The attackers sit in different shards from round to round, as the coordinator's fresh seed puts them.
    const order = words.map((_, i) => i).sort(() => Math.random() - 0.5);
    const started = performance.now();
    const mean = await aggregate(
      order.map((i) => words[i]!),
      defence,
      codec,
    );
    serverMs += performance.now() - started;
    if (mean) {
      global = Float32Array.from(global, (v, j) => v + mean[j]!);
      published++;
    }
    perRound.push(evaluate(global, test));
  }
  return {
    encoding,
    attack,
    malicious,
    defence,
    ...perRound.at(-1)!,
    published,
    serverMs: serverMs / ROUNDS,
    perRound,
  };
}

const { train: trainSet, test } = loadMnist();
const devices = nonIidShards(trainSet, DEVICES).map((s) => ({ ...s, n: Math.min(s.n, 400) }));
const DEFENCES: Defence[] = ['undefended', 'sum bounds', 'bounds + robust shards'];
const ENCODINGS: Encoding[] =
  process.env.BENCH_ENCODING === 'fixed' || process.env.BENCH_ENCODING === 'ddgauss'
    ? [process.env.BENCH_ENCODING]
    : ['fixed', 'ddgauss'];
const configs: [Encoding, Attack, number][] = ENCODINGS.flatMap((e): [Encoding, Attack, number][] => [
  [e, 'none', 0],
  [e, 'blowup', 1],
  // DDGauss has no weight word to stall with.
  ...(e === 'fixed' ? [[e, 'weight', 1] as [Encoding, Attack, number]] : []),
  [e, 'backdoor', 1],
  [e, 'backdoor', 2],
]);
const bar = progressBar('bench:robust', configs.length * DEFENCES.length);
const results: Result[] = [];
for (const [encoding, attack, malicious] of configs)
  for (const defence of DEFENCES) {
    bar.update(results.length, `${encoding}: ${attack} ×${malicious}, ${defence}`);
    results.push(await run(encoding, attack, malicious, defence, devices, test));
  }
bar.done('');

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
// The reference: the honest round, undefended, with the same encoding, measured in this run.
const refMs = (e: Encoding) =>
  results.find((r) => r.encoding === e && r.attack === 'none' && r.defence === 'undefended')!.serverMs;
console.log(
  `\n${DEVICES} devices a round (non-IID MNIST), softmax regression (${D} values), ${ROUNDS} rounds of FedAvg\n`,
);
console.log(
  '| encoding | attack | malicious | defence | clean accuracy | backdoor success | rounds published | server ms/round (× honest undefended) |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(
    `| ${r.encoding} | ${r.attack} | ${r.malicious} of ${DEVICES} | ${r.defence} | ${pct(r.clean)} | ${pct(r.backdoor)} | ${r.published} of ${ROUNDS} | ${r.serverMs.toFixed(1)} (${(r.serverMs / refMs(r.encoding)).toFixed(2)}×) |`,
  );

const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'robust.json'), `${JSON.stringify({ devices: DEVICES, rounds: ROUNDS, results }, null, 2)}\n`);
const colors: Record<Defence, string> = {
  undefended: '#c0392b',
  'sum bounds': '#e67e22',
  'bounds + robust shards': '#2471a3',
};
const backdoor = results.filter((r) => r.encoding === ENCODINGS[0] && r.attack === 'backdoor' && r.malicious === 1);
writeFileSync(
  join(out, 'robust.svg'),
  lineChartSvg({
    title: `One backdooring device of ${DEVICES} (${ENCODINGS[0]}): clean accuracy (solid) and backdoor success (dashed)`,
    xLabel: 'round',
    yLabel: 'share of held-out digits',
    yMin: 0,
    yMax: 1,
    series: [
      {
        label: 'no attacker: clean',
        color: '#7f8c8d',
        points: results.find((r) => r.encoding === ENCODINGS[0])!.perRound.map((p, i) => ({ x: i + 1, y: p.clean })),
      },
      ...backdoor.flatMap((r) => [
        {
          label: `${r.defence}: clean`,
          color: colors[r.defence],
          points: r.perRound.map((p, i) => ({ x: i + 1, y: p.clean })),
        },
        {
          label: `${r.defence}: backdoor`,
          color: colors[r.defence],
          dashed: true,
          points: r.perRound.map((p, i) => ({ x: i + 1, y: p.backdoor })),
        },
      ]),
    ],
  }),
);
console.log(`\nwrote ${join(out, 'robust.json')} and robust.svg`);
