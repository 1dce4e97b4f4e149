/** The second-order scattering transform (models/features/scattering.ts) and mnistScatter's input (models/specs.ts). */
import { describe, expect, it } from 'vitest';
import {
  fft2,
  groupNormalize,
  scatter,
  scatteringChannels,
  scatteringFeatures,
  scatteringGrid,
} from '../../../models/features/scattering.ts';
import { loadMnist } from '../../../models/data/mnist.ts';
import { MNIST_SCATTERING, MNIST_SCATTER_GROUPS, mnistScatter, mnistScatterInput } from '../../../models/specs.ts';

const O = MNIST_SCATTERING; // 28×28, J = 2, L = 8
const digits = (n: number) => loadMnist().train.x.slice(0, n * 784);
const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const diff = (a: Float32Array, b: Float32Array) => norm(a.map((x, i) => x - b[i]!));

/** One image's channel c as a grid × grid array (channel-major output). */
const channel = (f: Float32Array, c: number) => f.slice(c * 49, (c + 1) * 49);
const transposed = (img: Float32Array, side: number) =>
  img.map((_, i) => img[(i % side) * side + Math.floor(i / side)]!);

describe('scattering transform', () => {
  it('has 1 + JL + L²J(J−1)/2 channels on a size/2^J grid: 81 × 7 × 7 = 3,969 features for a digit', () => {
    expect(scatteringChannels(O)).toBe(81);
    expect(scatteringGrid(O)).toBe(7);
    expect(scatteringFeatures(O)).toBe(3969);
    expect(mnistScatter.inputShape).toEqual([scatteringFeatures(O)]);
    expect(scatteringChannels({ size: 32, J: 3, L: 4 })).toBe(1 + 12 + 16 * 3);
    expect(scatter(digits(3), 3, O)).toHaveLength(3 * 3969);
    expect(scatter(new Float32Array(16 * 16), 1, { size: 16, J: 1, L: 4 })).toHaveLength(5 * 8 * 8);
  });

  it('refuses options it cannot honour and inputs of the wrong size', () => {
    expect(() => scatter(new Float32Array(784), 1, { ...O, J: 0 })).toThrow(RangeError);
    expect(() => scatter(new Float32Array(784), 1, { ...O, L: 7 })).toThrow(RangeError);
    expect(() => scatter(new Float32Array(30 * 30), 1, { ...O, size: 30 })).toThrow(/multiple of 2\^J/);
    expect(() => scatter(new Float32Array(783), 1, O)).toThrow(/783 values/);
  });

  it('is deterministic and per image: a batch equals its images one by one', () => {
    const x = digits(4);
    const all = scatter(x, 4, O);
    expect(scatter(x, 4, O)).toEqual(all);
    for (let k = 0; k < 4; k++)
      expect(scatter(x.slice(k * 784, (k + 1) * 784), 1, O)).toEqual(all.slice(k * 3969, (k + 1) * 3969));
  });

  it('is positively homogeneous (moduli of linear filters): S(2x) = 2·S(x), and S(0) = 0', () => {
    const x = digits(1);
    const s = scatter(x, 1, O),
      s2 = scatter(
        x.map((v) => 2 * v),
        1,
        O,
      );
    expect(
      diff(
        s2,
        s.map((v) => 2 * v),
      ) / norm(s2),
    ).toBeLessThan(1e-6);
    expect(scatter(new Float32Array(784), 1, O).every((v) => Math.abs(v) < 1e-12)).toBe(true);
  });

  it('is covariant with transposition: the orientations map θ → π/2 − θ (t → L/2 − 2 − t mod L), exactly', () => {
    // Transposing the image (a reflection through the diagonal, which keeps the centred padding and the output grid)
    // transposes every channel and relabels the wavelet orientations; the modulus makes θ and θ + π the same.
    const x = digits(2).slice(784, 1568);
    const s = scatter(x, 1, O),
      st = scatter(transposed(x, 28), 1, O);
    const L = O.L,
      flip = (t: number) => (((L / 2 - 2 - t) % L) + L) % L;
    const first = (j: number, t: number) => 1 + j * L + t,
      second = (t1: number, t2: number) => 1 + 2 * L + t1 * L + t2;
    const pairs: [number, number][] = [[0, 0]];
    for (let j = 0; j < 2; j++) for (let t = 0; t < L; t++) pairs.push([first(j, t), first(j, flip(t))]);
    for (let t1 = 0; t1 < L; t1++)
      for (let t2 = 0; t2 < L; t2++) pairs.push([second(t1, t2), second(flip(t1), flip(t2))]);
    expect(pairs).toHaveLength(81);
    for (const [c, ct] of pairs) {
      const want = transposed(channel(s, c), 7),
        got = channel(st, ct);
      expect(diff(got, want)).toBeLessThanOrEqual(1e-5 * norm(want) + 1e-9);
    }
    // and it is a real relabelling: the first-order channels of a digit are not all alike
    expect(diff(channel(s, first(0, 0)), channel(s, first(0, 4)))).toBeGreaterThan(0.1 * norm(channel(s, first(0, 0))));
  });

  it('is nearly invariant to small translations: a 1-pixel shift moves the features far less than the pixels', () => {
    const x = digits(20);
    let pixel = 0,
      feature = 0;
    for (let k = 0; k < 20; k++) {
      const img = x.slice(k * 784, (k + 1) * 784);
      const shifted = img.map((_, i) => (i % 28 === 0 ? 0 : img[i - 1]!)); // one column to the right
      pixel += diff(shifted, img) / norm(img);
      const s = scatter(img, 1, O);
      feature += diff(scatter(shifted, 1, O), s) / norm(s);
    }
    expect(pixel / 20).toBeGreaterThan(0.5); // thin strokes: a shift changes most of the ink
    expect(feature / 20).toBeLessThan(0.5 * (pixel / 20)); // measured: 0.25 against 0.58
  });

  it('keeps the energy bounded: the features of a digit have less energy than its pixels', () => {
    const x = digits(10);
    const s = scatter(x, 10, O);
    for (let k = 0; k < 10; k++) {
      const e = norm(s.slice(k * 3969, (k + 1) * 3969)) ** 2 * 16,
        ex = norm(x.slice(k * 784, (k + 1) * 784)) ** 2; // ×16: one output value stands for a 4×4 block
      expect(e).toBeLessThan(ex);
      expect(e).toBeGreaterThan(0.05 * ex);
    }
  });

  it('fft2 is the 2-D DFT (against the naive sum) and its inverse undoes it', () => {
    const n = 8,
      re = Float64Array.from({ length: n * n }, (_, i) => Math.sin(i * 1.3) + (i % 5)),
      im = Float64Array.from({ length: n * n }, (_, i) => Math.cos(i * 0.7));
    const [r, m] = [Float64Array.from(re), Float64Array.from(im)];
    fft2(r, m, n, false);
    for (const [u, v] of [
      [0, 0],
      [1, 3],
      [5, 2],
      [7, 7],
    ] as const) {
      let sr = 0,
        si = 0;
      for (let y = 0; y < n; y++)
        for (let x = 0; x < n; x++) {
          const a = (-2 * Math.PI * (u * y + v * x)) / n;
          sr += re[y * n + x]! * Math.cos(a) - im[y * n + x]! * Math.sin(a);
          si += re[y * n + x]! * Math.sin(a) + im[y * n + x]! * Math.cos(a);
        }
      expect(r[u * n + v]).toBeCloseTo(sr, 9);
      expect(m[u * n + v]).toBeCloseTo(si, 9);
    }
    fft2(r, m, n, true);
    r.forEach((v, i) => expect(v).toBeCloseTo(re[i]!, 12));
  });
});

describe('group normalisation', () => {
  it('shifts each group of each example to mean 0 and scales it by 1/√(variance + eps), in place', () => {
    const f = scatter(digits(3), 3, O);
    const g = 3969 / 27;
    const stats = (v: Float32Array) => {
      const mean = v.reduce((a, x) => a + x, 0) / g;
      return { mean, variance: v.reduce((a, x) => a + (x - mean) ** 2, 0) / g };
    };
    const group = (a: Float32Array, k: number, q: number) => a.subarray(k * 3969 + q * g, k * 3969 + (q + 1) * g);
    const before = Array.from({ length: 3 * 27 }, (_, i) => stats(group(f, Math.floor(i / 27), i % 27)).variance);
    const out = groupNormalize(f, 3, 81, MNIST_SCATTER_GROUPS);
    expect(out).toBe(f);
    before.forEach((v, i) => {
      const after = stats(group(f, Math.floor(i / 27), i % 27));
      expect(Math.abs(after.mean)).toBeLessThan(1e-5);
      expect(after.variance).toBeCloseTo(v / (v + 1e-5), 4); // ~1, less for nearly flat (second-order) groups
    });
    expect(mnistScatterInput(digits(3), 3)).toEqual(f);
  });

  it('refuses groups that do not divide the channels', () => {
    expect(() => groupNormalize(new Float32Array(81 * 49), 1, 81, 4)).toThrow(/groups/);
    expect(() => groupNormalize(new Float32Array(100), 1, 81, 27)).toThrow(/channels/);
  });
});
