/**
 * Distributed discrete Gaussian (DDGauss; Kairouz, Liu & Steinke, "The Distributed Discrete Gaussian Mechanism
 * for Federated Learning with Secure Aggregation", ICML 2021, Algorithms 1–2). Each device, before masking:
 *   1. clips its update to L2 norm c;
 *   2. rotates it with a randomized Hadamard transform HD (public random signs D from the round seed; pads to a
 *      power of two), which spreads the norm evenly so coordinates stay small;
 *   3. scales by 1/γ;
 *   4. rounds each coordinate randomly (unbiased), repeating until the rounded norm is ≤ Δ₂ (conditional rounding,
 *      §4.2), which bounds the sensitivity on the integer lattice;
 *   5. adds its share of discrete Gaussian noise N_Z(0, σ_local²);
 *   6. reduces mod 2^bits (here the words of Z_2^32 that SecAgg+ sums).
 * The server decodes the sum: signed representatives, ×γ, inverse rotation. The noise of the n devices adds up,
 * so the sum carries the full central noise σ_c = γ·√n·σ_local while no device's noise alone suffices.
 * Pure: no I/O.
 */
import { expandMask } from '../secagg/prg.ts';
import { randomWords } from '../random.ts';
import { discreteGaussianVector } from './discrete-gaussian.ts';
import { DEFAULT_ORDERS, RdpAccountant, zcdpToEpsilon } from './rdp.ts';

export interface DdgaussParameters {
  /** L2 clip c of each device's update (original units). */
  clip: number;
  /** Dimension d and its power-of-two padding. */
  dimension: number;
  paddedDimension: number;
  /** Scale γ: one lattice step in original units. */
  gamma: number;
  /** Per-device noise std in lattice units; the sum of `devices` shares has std σ_c/γ. */
  localNoiseStd: number;
  centralNoiseStd: number;
  /** Bound Δ₂ on each device's rounded, scaled norm (conditional rounding). */
  roundedNormBound: number;
  devices: number;
  bits: number;
}

/** β of conditional rounding: the chance one rounding attempt exceeds the bound is ≤ β (KLS21 use e^{−1/2}). */
const BETA = Math.exp(-0.5);

/**
 * Parameters for `devices` contributors (use the fewest a round accepts: fewer devices add less noise), target
 * central noise std σ_c, clip c, dimension d, bit width. γ is the smallest scale at which the sum's signal,
 * rounding and noise stay within ±2^(bits−1) with `kStddevs` standard deviations of margin per coordinate.
 */
export function ddgaussParameters(opts: {
  clip: number;
  centralNoiseStd: number;
  devices: number;
  dimension: number;
  bits?: number;
  kStddevs?: number;
}): DdgaussParameters {
  const { clip, centralNoiseStd, devices, dimension, bits = 32, kStddevs = 4 } = opts;
  if (!(clip > 0) || !(centralNoiseStd > 0) || !(devices >= 1) || !(dimension >= 1))
    throw new RangeError('clip, centralNoiseStd, devices and dimension must be positive');
  if (!(bits >= 8 && bits <= 32)) throw new RangeError(`bits must be in 8..32, got ${bits}`);
  const padded = 2 ** Math.ceil(Math.log2(dimension));
  const half = 2 ** (bits - 1);
  // Per coordinate of the sum, in original units: signal ≤ √n·c/√d' (rotated, roughly Gaussian), noise σ_c;
  // rounding adds ≤ γ²/4 variance per device. Solve k²(n c²/d' + σ_c² + n γ²/4) ≤ (γ·half)² for γ.
  const signalAndNoise = (devices * clip * clip) / padded + centralNoiseStd * centralNoiseStd;
  const denom = half * half - (kStddevs * kStddevs * devices) / 4;
  if (denom <= 0) throw new RangeError(`${bits} bits cannot hold the rounding error of ${devices} devices`);
  const gamma = kStddevs * Math.sqrt(signalAndNoise / denom);
  const localNoiseStd = centralNoiseStd / (gamma * Math.sqrt(devices));
  const cg = clip / gamma;
  const roundedNormBound = Math.min(
    Math.sqrt(cg * cg + padded / 4 + Math.sqrt(2 * Math.log(1 / BETA)) * (cg + Math.sqrt(padded) / 2)),
    cg + Math.sqrt(padded),
  );
  return {
    clip,
    dimension,
    paddedDimension: padded,
    gamma,
    localNoiseStd,
    centralNoiseStd,
    roundedNormBound,
    devices,
    bits,
  };
}

/** In-place fast Walsh–Hadamard transform (unnormalised). */
function fwht(v: Float64Array): void {
  for (let h = 1; h < v.length; h *= 2) {
    for (let i = 0; i < v.length; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = v[j]!,
          b = v[j + h]!;
        v[j] = a + b;
        v[j + h] = a - b;
      }
    }
  }
}

async function signs(seed: Uint8Array, n: number): Promise<Float64Array> {
  const words = await expandMask(seed, n);
  return Float64Array.from(words, (w) => (w & 1 ? -1 : 1));
}

/** x ↦ H·D·x / √d' (orthonormal), padded with zeros to d'. */
export async function rotate(
  x: Float32Array | Float64Array,
  paddedDimension: number,
  seed: Uint8Array,
): Promise<Float64Array> {
  const s = await signs(seed, paddedDimension);
  const v = new Float64Array(paddedDimension);
  for (let i = 0; i < x.length; i++) v[i] = x[i]! * s[i]!;
  fwht(v);
  const k = 1 / Math.sqrt(paddedDimension);
  for (let i = 0; i < v.length; i++) v[i] = v[i]! * k;
  return v;
}

/** The inverse: D·H·y / √d' (H is symmetric and D its own inverse), first `dimension` entries. */
export async function unrotate(y: Float64Array, dimension: number, seed: Uint8Array): Promise<Float64Array> {
  const s = await signs(seed, y.length);
  const v = y.slice();
  fwht(v);
  const k = 1 / Math.sqrt(y.length);
  const out = new Float64Array(dimension);
  for (let i = 0; i < dimension; i++) out[i] = v[i]! * k * s[i]!;
  return out;
}

/** Device side: update → paddedDimension words of Z_2^32, ready to be masked. `seed` is the round's public rotation seed. */
export async function ddgaussEncode(
  update: Float32Array,
  p: DdgaussParameters,
  seed: Uint8Array,
): Promise<Uint32Array> {
  if (update.length !== p.dimension)
    throw new RangeError(`update has ${update.length} values, parameters are for ${p.dimension}`);
  let norm = 0;
  for (const v of update) {
    if (!Number.isFinite(v)) throw new RangeError('update has a non-finite value');
    norm += v * v;
  }
  norm = Math.sqrt(norm);
  const clipScale = norm > p.clip ? p.clip / norm : 1;
  const rotated = await rotate(update, p.paddedDimension, seed);
  for (let i = 0; i < rotated.length; i++) rotated[i] = (rotated[i]! * clipScale) / p.gamma;
  const rounded = new Float64Array(p.paddedDimension);
  for (let attempt = 0; ; attempt++) {
    const coins = randomWords(p.paddedDimension);
    let sq = 0;
    for (let i = 0; i < rotated.length; i++) {
      const v = rotated[i]!,
        lo = Math.floor(v);
      const r = coins[i]! / 4294967296 < v - lo ? lo + 1 : lo;
      rounded[i] = r;
      sq += r * r;
    }
    if (Math.sqrt(sq) <= p.roundedNormBound) break;
    if (attempt > 1000)
      throw new Error('conditional rounding did not meet its bound in 1000 attempts (parameters inconsistent)');
  }
  const noise = discreteGaussianVector(p.localNoiseStd, p.paddedDimension);
  const out = new Uint32Array(p.paddedDimension);
  for (let i = 0; i < out.length; i++) out[i] = (rounded[i]! + noise[i]!) >>> 0;
  return out;
}

/** Server side: the unmasked sum → the noisy sum of the devices' clipped updates, in original units. */
export async function ddgaussDecode(sum: Uint32Array, p: DdgaussParameters, seed: Uint8Array): Promise<Float64Array> {
  if (sum.length !== p.paddedDimension)
    throw new RangeError(`sum has ${sum.length} words, parameters are for ${p.paddedDimension}`);
  const modulus = 2 ** p.bits,
    half = modulus / 2;
  const y = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const w = sum[i]! % modulus;
    y[i] = (w >= half ? w - modulus : w) * p.gamma;
  }
  return unrotate(y, p.dimension, seed);
}

/**
 * ρ of one round as zCDP, for adding or removing one device (KLS21, Theorem 1 with the L2 bound): the sum of n
 * discrete Gaussians N_Z(0, σ²) with sensitivity Δ₂ on Z^d is ½ε²-zCDP with
 *   ε = min{ √(Δ₂²/(nσ²) + ½τd),  Δ₂/(√n·σ) + τ√d },   τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)).
 */
export function ddgaussRoundRho(p: DdgaussParameters): number {
  const { devices: n, localNoiseStd: s, roundedNormBound: delta, paddedDimension: d } = p;
  let tau = 0;
  for (let k = 1; k < n; k++) tau += Math.exp((-2 * Math.PI * Math.PI * s * s * k) / (k + 1));
  tau *= 10;
  const eps = Math.min(
    Math.sqrt((delta * delta) / (n * s * s) + 0.5 * tau * d),
    delta / (Math.sqrt(n) * s) + tau * Math.sqrt(d),
  );
  return (eps * eps) / 2;
}

/**
 * Client-level ε after `rounds` rounds in which each device takes part with probability `sampleRate`.
 * sampleRate = 1: exact zCDP composition (ρ·rounds) converted to (ε, δ). sampleRate < 1: the round's ρ is read as
 * a Gaussian with noise multiplier z = 1/√(2ρ) and composed with the Poisson-subsampled Gaussian RDP accountant —
 * the approximation KLS21 use in their experiments (§6), not a theorem for the discrete mechanism.
 */
export function ddgaussEpsilon(opts: {
  params: DdgaussParameters;
  rounds: number;
  sampleRate: number;
  delta: number;
}): number {
  const rho = ddgaussRoundRho(opts.params);
  if (opts.sampleRate >= 1) return zcdpToEpsilon(rho * opts.rounds, opts.delta, DEFAULT_ORDERS);
  return new RdpAccountant()
    .step({ noiseMultiplier: 1 / Math.sqrt(2 * rho), sampleRate: opts.sampleRate, steps: opts.rounds })
    .getEpsilon(opts.delta);
}

/** Below this per-device noise (lattice steps) the devices' discrete noise does not add up to the Gaussian the bound assumes (τ term). */
export const MIN_LOCAL_NOISE_STD = 1;

/**
 * Why `p` does not give the privacy it claims for a round of at least `contributors` devices, or undefined when it
 * does. Checked by the server when a task is created and by every device before it sends anything:
 *  - noise sized for more devices than the round accepts: a round that publishes with fewer carries less noise;
 *  - fewer than 3 devices, or parameters that are not what ddgaussParameters derives from their own clip, noise
 *    and dimension (a server announcing a smaller local noise than the central noise needs);
 *  - non-finite values, local noise below MIN_LOCAL_NOISE_STD, or a round whose ε is not finite.
 */
export function ddgaussProblem(p: DdgaussParameters, contributors: number): string | undefined {
  const values = [
    p.clip,
    p.dimension,
    p.paddedDimension,
    p.gamma,
    p.localNoiseStd,
    p.centralNoiseStd,
    p.roundedNormBound,
    p.devices,
    p.bits,
  ];
  if (!values.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0))
    return 'parameters must be finite positive numbers';
  if (!Number.isInteger(p.devices) || p.devices < 3)
    return `noise is sized for ${p.devices} devices; at least 3 must add theirs`;
  if (p.devices > contributors)
    return `noise is sized for ${p.devices} devices but a round may publish with ${contributors}: the sum would carry less noise than claimed`;
  let expected: DdgaussParameters;
  try {
    expected = ddgaussParameters({
      clip: p.clip,
      centralNoiseStd: p.centralNoiseStd,
      devices: p.devices,
      dimension: p.dimension,
      bits: p.bits,
    });
  } catch (e) {
    return (e as Error).message;
  }
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
  if (
    expected.paddedDimension !== p.paddedDimension ||
    !close(expected.gamma, p.gamma) ||
    !close(expected.localNoiseStd, p.localNoiseStd) ||
    !close(expected.roundedNormBound, p.roundedNormBound)
  ) {
    return 'parameters are not the ones derived from their clip, central noise and dimension';
  }
  if (!(p.localNoiseStd >= MIN_LOCAL_NOISE_STD))
    return `per-device noise ${p.localNoiseStd} is below ${MIN_LOCAL_NOISE_STD} lattice step: the devices' noise does not add up to the claimed Gaussian`;
  if (!Number.isFinite(ddgaussRoundRho(p))) return 'the privacy loss of one round is not finite';
  return undefined;
}
