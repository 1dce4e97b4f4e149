/** Distributed discrete Gaussian (federated/dp/distributed-dp.ts) and the discrete Gaussian sampler. */
import { describe, expect, it } from 'vitest';
import { discreteGaussianVector } from '../../../federated/dp/discrete-gaussian.ts';
import {
  ddgaussDecode,
  ddgaussEncode,
  ddgaussEpsilon,
  ddgaussParameters,
  ddgaussRoundRho,
  rotate,
  unrotate,
} from '../../../federated/dp/distributed-dp.ts';
import { randomBytes } from '../../../federated/random.ts';

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

describe('discrete Gaussian sampler', () => {
  it('has mean 0 and variance σ² (σ = 0.7 and 20), integer values', () => {
    for (const sigma of [0.7, 20]) {
      const x = discreteGaussianVector(sigma, 60_000);
      const mean = x.reduce((a, b) => a + b, 0) / x.length;
      const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
      expect(Math.abs(mean)).toBeLessThan((5 * sigma) / Math.sqrt(x.length));
      // For σ ≥ 0.7 the discrete Gaussian's variance is within 1e-3 of σ²; sampling error ≈ σ²·√(2/n) ≈ 0.6 %.
      expect(variance / (sigma * sigma)).toBeGreaterThan(0.97);
      expect(variance / (sigma * sigma)).toBeLessThan(1.03);
    }
  });
});

describe('DDGauss', () => {
  it('the randomized Hadamard rotation is orthonormal and inverted exactly', async () => {
    const seed = randomBytes(32);
    const x = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * (i % 7));
    const y = await rotate(x, 128, seed);
    expect(norm(y)).toBeCloseTo(norm(x), 4);
    const back = await unrotate(y, 100, seed);
    back.forEach((v, i) => expect(v).toBeCloseTo(x[i]!, 5));
  });

  it('n devices’ encodings sum, through Z_2^32, to the sum of their clipped updates plus noise of std σ_c', async () => {
    const n = 20,
      d = 1000,
      clip = 1,
      sigmaC = 0.5;
    const p = ddgaussParameters({ clip, centralNoiseStd: sigmaC, devices: n, dimension: d });
    expect(p.paddedDimension).toBe(1024);
    const seed = randomBytes(32);
    const updates = Array.from({ length: n }, (_, k) =>
      Float32Array.from({ length: d }, (_, i) => Math.cos(i * (k + 1)) * (k === 0 ? 10 : 0.02)),
    );
    const sum = new Uint32Array(p.paddedDimension);
    for (const u of updates) {
      const e = await ddgaussEncode(u, p, seed);
      for (let i = 0; i < sum.length; i++) sum[i] = (sum[i]! + e[i]!) >>> 0;
    }
    const decoded = await ddgaussDecode(sum, p, seed);
    // The true sum with device 0 clipped to norm 1.
    const truth = new Float64Array(d);
    updates.forEach((u) => {
      const s = Math.min(1, clip / norm(u));
      u.forEach((v, i) => (truth[i] = truth[i]! + v * s));
    });
    const err = Array.from(decoded, (v, i) => v - truth[i]!);
    const std = Math.sqrt(err.reduce((a, b) => a + b * b, 0) / d);
    // Noise σ_c plus rounding (≈ γ·√(n/4·…)), which γ keeps far below σ_c at 32 bits.
    expect(std).toBeGreaterThan(sigmaC * 0.9);
    expect(std).toBeLessThan(sigmaC * 1.15);
  });

  it('gives a finite ε that falls with more noise and rises with rounds and sampling', () => {
    const p = (sigmaC: number) =>
      ddgaussParameters({ clip: 1, centralNoiseStd: sigmaC, devices: 100, dimension: 10_000 });
    const e1 = ddgaussEpsilon({ params: p(1), rounds: 100, sampleRate: 0.1, delta: 1e-5 });
    expect(Number.isFinite(e1)).toBe(true);
    expect(ddgaussEpsilon({ params: p(2), rounds: 100, sampleRate: 0.1, delta: 1e-5 })).toBeLessThan(e1);
    expect(ddgaussEpsilon({ params: p(1), rounds: 200, sampleRate: 0.1, delta: 1e-5 })).toBeGreaterThan(e1);
    expect(ddgaussEpsilon({ params: p(1), rounds: 100, sampleRate: 1, delta: 1e-5 })).toBeGreaterThan(e1);
    // At 32 bits the lattice is fine: ρ is essentially that of a continuous Gaussian with sensitivity c, noise σ_c.
    expect(ddgaussRoundRho(p(1))).toBeCloseTo(1 / 2, 1);
  });

  it('refuses an update of the wrong length or with non-finite values, and impossible parameters', async () => {
    const p = ddgaussParameters({ clip: 1, centralNoiseStd: 1, devices: 10, dimension: 8 });
    await expect(ddgaussEncode(new Float32Array(7), p, randomBytes(32))).rejects.toThrow(
      /7 values, parameters are for 8/,
    );
    await expect(ddgaussEncode(new Float32Array(8).fill(NaN), p, randomBytes(32))).rejects.toThrow(/non-finite/);
    expect(() => ddgaussParameters({ clip: 0, centralNoiseStd: 1, devices: 10, dimension: 8 })).toThrow(RangeError);
  });
});

describe('DDGauss through a SecAgg+ round', () => {
  it('devices encode with their noise share, the round unmasks the sum, the server decodes the noisy mean', async () => {
    const { makeIdentities, roundConfig, runRound } = await import('../secagg/secagg-harness.ts');
    const n = 12,
      d = 200;
    const identities = await makeIdentities(n);
    // Parameters for the fewest contributors the round accepts (here: 10 of 12 after two drop out).
    const p = ddgaussParameters({ clip: 1, centralNoiseStd: 0.05, devices: 10, dimension: d });
    const rotationSeed = randomBytes(32);
    const updates = new Map(
      identities.map((id, k) => [id.id, Float32Array.from({ length: d }, (_, i) => 0.05 * Math.sin(i + k))]),
    );
    const inputs = new Map<string, Uint32Array>();
    for (const [id, u] of updates) inputs.set(id, await ddgaussEncode(u, p, rotationSeed));
    const config = roundConfig({ neighbours: 6, threshold: 4, length: p.paddedDimension });
    const dropped = new Set(identities.slice(0, 2).map((i) => i.id));
    const { result } = await runRound(config, identities, inputs, { beforeMasked: dropped });
    const decoded = await ddgaussDecode(result.sum, p, rotationSeed);
    const truth = new Float64Array(d);
    for (const id of result.survivors) updates.get(id)!.forEach((v, i) => (truth[i] = truth[i]! + v));
    const err = Array.from(decoded, (v, i) => v - truth[i]!);
    const std = Math.sqrt(err.reduce((a, b) => a + b * b, 0) / d);
    // The 10 survivors' noise shares add up to ≈ σ_c = 0.05; the signal itself passes through exactly.
    expect(std).toBeGreaterThan(0.035);
    expect(std).toBeLessThan(0.07);
  });
});
