/**
 * RDP accountant (federated/dp/rdp.ts) against published values.
 * Source of the expected numbers: tensorflow/privacy, tensorflow_privacy/privacy/analysis/rdp_accountant_test.py
 * (test_compute_rdp_scalar, test_compute_rdp_sequence, test_get_privacy_spent_check_target_delta). That test's ε
 * uses the classic conversion ε = min_α rdp(α) − log δ/(α − 1), which we compute from our RDP to compare; our
 * accountant reports the tighter conversion of Balle et al. 2020, which must be no larger.
 * Opacus: pytorch/opacus, opacus/tests/accountants_test.py (test_rdp_accountant), which uses that same modern
 * conversion over its DEFAULT_ALPHAS.
 */
import { describe, expect, it } from 'vitest';
import {
  OPACUS_ORDERS,
  RdpAccountant,
  TF_PRIVACY_ORDERS,
  computeRdp,
  noiseMultiplierFor,
  rdpToEpsilon,
  subsampledGaussianRdp,
} from '../../../federated/dp/rdp.ts';
import { logErfc } from '../../../federated/dp/special.ts';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('RDP of the Poisson-subsampled Gaussian', () => {
  it('TF Privacy test_compute_rdp_scalar: q = 0.1, σ = 2, 10 steps, α = 5 → 0.07737', () => {
    expect(subsampledGaussianRdp(0.1, 2, 5) * 10).toBeCloseTo(0.07737, 5);
  });

  it('TF Privacy test_compute_rdp_sequence: q = 0.01, σ = 2.5, 50 steps, integer and fractional orders', () => {
    const got = computeRdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, Infinity]);
    const want = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];
    want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThan(1e-5));
    expect(got[5]).toBe(Infinity);
  });

  it('TF Privacy test_get_privacy_spent_check_target_delta: q = 0.01, σ = 4, 10⁴ steps, orders 2..32, δ = 1e-5 → ε 1.258575 at α = 20 (classic)', () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const rdp = computeRdp(0.01, 4, 10_000, orders);
    const classic = orders
      .map((a, i) => ({ eps: rdp[i]! - Math.log(1e-5) / (a - 1), a }))
      .reduce((x, y) => (y.eps < x.eps ? y : x));
    expect(rel(classic.eps, 1.258575)).toBeLessThan(1e-5);
    expect(classic.a).toBe(20);
    const modern = rdpToEpsilon(orders, rdp, 1e-5);
    expect(modern.epsilon).toBeLessThan(classic.eps);
  });

  it('no sampling is the plain Gaussian (α/2σ²); no data is free', () => {
    expect(subsampledGaussianRdp(1, 10, 20)).toBeCloseTo(0.1, 12);
    expect(subsampledGaussianRdp(0, 10, 20)).toBe(0);
  });

  it('log erfc is accurate across its range', () => {
    // erfc(0.5) = 0.4795001221869535, erfc(3) = 2.209049699858544e-5, erfc(10) = 2.088487583762545e-45
    expect(Math.exp(logErfc(0.5))).toBeCloseTo(0.4795001221869535, 13);
    expect(rel(Math.exp(logErfc(3)), 2.209049699858544e-5)).toBeLessThan(1e-10);
    expect(rel(logErfc(10), Math.log(2.088487583762545e-45))).toBeLessThan(1e-12);
    expect(rel(logErfc(-1), Math.log(1.8427007929497148))).toBeLessThan(1e-12);
  });
});

describe('RdpAccountant', () => {
  it('Opacus test_rdp_accountant: σ = 1.5, q = 0.04, ⌊90 / 0.04⌋ steps, δ = 1e-5 → ε 7.32911117143', () => {
    const a = new RdpAccountant(OPACUS_ORDERS).step({
      noiseMultiplier: 1.5,
      sampleRate: 0.04,
      steps: Math.floor(90 / 0.04),
    });
    expect(rel(a.getEpsilon(1e-5), 7.32911117143)).toBeLessThan(1e-9);
    // Adding TF Privacy's orders cannot make the bound worse.
    expect(
      new RdpAccountant().step({ noiseMultiplier: 1.5, sampleRate: 0.04, steps: 2250 }).getEpsilon(1e-5),
    ).toBeLessThanOrEqual(7.32911117143 + 1e-9);
  });

  it('composes steps, uses the orders of both libraries, and ε grows with steps and shrinks with noise', () => {
    expect(TF_PRIVACY_ORDERS).toContain(512);
    expect(OPACUS_ORDERS).toContain(1.1);
    const a = new RdpAccountant().step({ noiseMultiplier: 1.1, sampleRate: 256 / 60_000, steps: 15 * 235 });
    const e = a.getEpsilon(1e-5);
    // Abadi et al. 2016 report (2, 1e-5)-DP for this MNIST setting with the moments accountant; RDP is comparable.
    expect(e).toBeGreaterThan(0.8);
    expect(e).toBeLessThan(2.5);
    const b = new RdpAccountant()
      .step({ noiseMultiplier: 1.1, sampleRate: 256 / 60_000, steps: 10 * 235 })
      .step({ noiseMultiplier: 1.1, sampleRate: 256 / 60_000, steps: 5 * 235 });
    expect(rel(b.getEpsilon(1e-5), e)).toBeLessThan(1e-9);
    expect(
      new RdpAccountant().step({ noiseMultiplier: 2, sampleRate: 256 / 60_000, steps: 15 * 235 }).getEpsilon(1e-5),
    ).toBeLessThan(e);
  });

  it('noiseMultiplierFor inverts getEpsilon', () => {
    const z = noiseMultiplierFor({ epsilon: 2, delta: 1e-5, sampleRate: 0.01, steps: 1000 });
    const e = new RdpAccountant().step({ noiseMultiplier: z, sampleRate: 0.01, steps: 1000 }).getEpsilon(1e-5);
    expect(e).toBeLessThanOrEqual(2);
    expect(e).toBeGreaterThan(1.99);
  });

  it('refuses nonsense with a RangeError that says what is wrong', () => {
    const a = new RdpAccountant();
    expect(() => a.step({ noiseMultiplier: -1, sampleRate: 0.1 })).toThrow(/noiseMultiplier/);
    expect(() => a.step({ noiseMultiplier: 1, sampleRate: 1.5 })).toThrow(/sampleRate/);
    expect(() => a.step({ noiseMultiplier: 1, sampleRate: 0.1, steps: 1.5 })).toThrow(/steps/);
    expect(() => a.getEpsilon(0)).toThrow(/delta/);
    expect(() => new RdpAccountant([0.5])).toThrow(/orders/);
  });
});
