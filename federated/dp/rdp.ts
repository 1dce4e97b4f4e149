/**
 * Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy
 * of the Sampled Gaussian Mechanism", §3.3: integer orders exactly, fractional orders by the convergent series),
 * ported from TensorFlow Privacy's rdp_accountant (the same computation Opacus uses), and the RDP → (ε, δ)
 * conversion of Balle et al. 2020 ("Hypothesis testing interpretations and Rényi DP", Thm. 21), which Opacus and
 * TF Privacy use now: ε = rdp(α) + log((α−1)/α) − (log δ + log α)/(α−1), minimised over the orders.
 */
import { logAdd, logBinomial, logErfc, logFactorial, logSub } from './special.ts';

/** TF Privacy's default orders (its rdp_accountant / compute_dp_sgd_privacy). */
export const TF_PRIVACY_ORDERS: readonly number[] = [
  1.25,
  1.5,
  1.75,
  2,
  2.25,
  2.5,
  3,
  3.5,
  4,
  4.5,
  ...range(5, 64),
  128,
  256,
  512,
];
/** Opacus's default orders (RDPAccountant.DEFAULT_ALPHAS). */
export const OPACUS_ORDERS: readonly number[] = [
  ...Array.from({ length: 100 }, (_, i) => 1 + (i + 1) / 10),
  ...range(12, 64),
];
/** Both lists merged: the accountant minimises over every order either library would try. */
export const DEFAULT_ORDERS: readonly number[] = [...new Set([...TF_PRIVACY_ORDERS, ...OPACUS_ORDERS])].sort(
  (a, b) => a - b,
);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  for (let i = 0; i <= alpha; i++) {
    const logCoef =
      logFactorial(alpha) - logFactorial(i) - logFactorial(alpha - i) + i * Math.log(q) + (alpha - i) * Math.log1p(-q);
    logA = logAdd(logA, logCoef + (i * i - i) / (2 * sigma * sigma));
  }
  return logA;
}

function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity,
    logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  for (let i = 0; ; i++) {
    const { log: logCoef, sign } = logBinomial(alpha, i);
    const j = alpha - i;
    const logT0 = logCoef + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logCoef + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30 || i > 10_000) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP at order α of one step of the Gaussian mechanism with noise multiplier σ, each record sampled with probability q. */
export function subsampledGaussianRdp(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP of `steps` compositions, per order. */
export function computeRdp(q: number, sigma: number, steps: number, orders: readonly number[]): number[] {
  return orders.map((a) => subsampledGaussianRdp(q, sigma, a) * steps);
}

/** The smallest ε over the orders for the given δ, and the order that gives it. */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
): { epsilon: number; order: number } {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: NaN };
  orders.forEach((a, i) => {
    const r = rdp[i]!;
    if (a <= 1 || !Number.isFinite(r)) return;
    const eps = r + Math.log1p(-1 / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (eps < best.epsilon) best = { epsilon: Math.max(0, eps), order: a };
  });
  return best;
}

/** (ε, δ) of ρ-zCDP via its RDP curve (ρ-zCDP ⇒ (α, αρ)-RDP for every α > 1; Bun & Steinke 2016, Def. 1.1). */
export function zcdpToEpsilon(rho: number, delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
  return rdpToEpsilon(
    orders,
    orders.map((a) => a * rho),
    delta,
  ).epsilon;
}

/** Accumulates the RDP of Poisson-subsampled Gaussian steps (DP-SGD, or rounds of noisy aggregation). */
export class RdpAccountant {
  readonly orders: readonly number[];
  #rdp: number[];

  constructor(orders: readonly number[] = DEFAULT_ORDERS) {
    if (!orders.length || orders.some((a) => !(a > 1))) throw new RangeError('orders must be numbers > 1');
    this.orders = orders;
    this.#rdp = orders.map(() => 0);
  }

  step(opts: { noiseMultiplier: number; sampleRate: number; steps?: number }): this {
    const { noiseMultiplier, sampleRate, steps = 1 } = opts;
    if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier))
      throw new RangeError(`noiseMultiplier must be a finite number ≥ 0, got ${noiseMultiplier}`);
    if (!(sampleRate >= 0 && sampleRate <= 1)) throw new RangeError(`sampleRate must be in [0, 1], got ${sampleRate}`);
    if (!(Number.isInteger(steps) && steps >= 0))
      throw new RangeError(`steps must be a non-negative integer, got ${steps}`);
    const add = computeRdp(sampleRate, noiseMultiplier, steps, this.orders);
    this.#rdp = this.#rdp.map((r, i) => r + add[i]!);
    return this;
  }

  /** Adds RDP directly (e.g. another mechanism's curve over the same orders). */
  compose(rdp: readonly number[]): this {
    if (rdp.length !== this.orders.length)
      throw new RangeError(`expected ${this.orders.length} RDP values, got ${rdp.length}`);
    this.#rdp = this.#rdp.map((r, i) => r + rdp[i]!);
    return this;
  }

  get rdp(): readonly number[] {
    return this.#rdp;
  }

  getEpsilon(delta: number): number {
    return rdpToEpsilon(this.orders, this.#rdp, delta).epsilon;
  }

  getPrivacySpent(delta: number): { epsilon: number; order: number } {
    return rdpToEpsilon(this.orders, this.#rdp, delta);
  }
}

/** The smallest noise multiplier (to 0.1 %) whose `steps` steps at `sampleRate` stay within (ε, δ). */
export function noiseMultiplierFor(opts: {
  epsilon: number;
  delta: number;
  sampleRate: number;
  steps: number;
  orders?: readonly number[];
}): number {
  const { epsilon, delta, sampleRate, steps, orders = DEFAULT_ORDERS } = opts;
  if (!(epsilon > 0)) throw new RangeError(`epsilon must be > 0, got ${epsilon}`);
  const eps = (sigma: number) => rdpToEpsilon(orders, computeRdp(sampleRate, sigma, steps, orders), delta).epsilon;
  let lo = 0,
    hi = 1;
  while (eps(hi) > epsilon) {
    hi *= 2;
    if (hi > 1e6)
      throw new RangeError(
        `no noise multiplier reaches ε = ${epsilon} at δ = ${delta} for ${steps} steps at rate ${sampleRate}`,
      );
  }
  while ((hi - lo) / hi > 1e-3) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
