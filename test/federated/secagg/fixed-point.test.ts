/** Fixed-point encoding for secure sums: weighted mean recovered, unbiased rounding, no wrap-around at the bound. */
import { describe, expect, it } from 'vitest';
import { decodeSum, encodeUpdate, fixedPointFor, stochasticRound } from '../../../federated/secagg/fixed-point.ts';

const add = (a: Uint32Array, b: Uint32Array) => a.map((v, i) => (v + b[i]!) >>> 0);

describe('fixed-point encoding', () => {
  it('the decoded sum is the example-weighted mean of the clipped updates', () => {
    const fp = fixedPointFor({ maxDevices: 1000, clip: 1, maxExamples: 100 });
    const updates = [new Float32Array([0.5, -0.25, 3]), new Float32Array([-0.5, 0.75, -3])];
    const counts = [30, 10];
    const sum = updates.map((u, i) => encodeUpdate(u, counts[i]!, fp)).reduce(add);
    const { mean, totalWeight } = decodeSum(sum, fp);
    expect(totalWeight).toBeCloseTo(0.4, 5);
    // clip to [−1, 1]: third coordinate 1 and −1
    expect(mean[0]).toBeCloseTo((0.5 * 30 - 0.5 * 10) / 40, 5);
    expect(mean[1]).toBeCloseTo((-0.25 * 30 + 0.75 * 10) / 40, 5);
    expect(mean[2]).toBeCloseTo((1 * 30 - 1 * 10) / 40, 5);
  });

  it('stochastic rounding is unbiased', () => {
    let total = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) total += stochasticRound(0.3, Math.random());
    expect(total / n).toBeCloseTo(0.3, 2);
    expect(stochasticRound(2, 0.999)).toBe(2);
  });

  it('maxDevices updates at the clip bound, all the same sign, do not wrap around 2^32', () => {
    const fp = fixedPointFor({ maxDevices: 5000, clip: 2, maxExamples: 1 });
    let sum = new Uint32Array(3);
    const one = encodeUpdate(new Float32Array([5, -5]), 1, fp);
    for (let i = 0; i < 5000; i++) sum = add(sum, one);
    const { weightedSum } = decodeSum(sum, fp);
    expect(weightedSum[0]).toBeCloseTo(10_000, 0);
    expect(weightedSum[1]).toBeCloseTo(-10_000, 0);
  });

  it('refuses non-finite values and impossible settings', () => {
    const fp = fixedPointFor({ maxDevices: 10, clip: 1, maxExamples: 1 });
    expect(() => encodeUpdate(new Float32Array([NaN]), 1, fp)).toThrow(/not finite/);
    expect(() => encodeUpdate(new Float32Array([1]), -1, fp)).toThrow(/examples/);
    expect(() => fixedPointFor({ maxDevices: 0, clip: 1, maxExamples: 1 })).toThrow(RangeError);
    expect(() => fixedPointFor({ maxDevices: 10, clip: 1e12, maxExamples: 1 })).toThrow(/less than one step/);
  });
});
