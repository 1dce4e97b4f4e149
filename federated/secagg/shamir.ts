/**
 * Shamir secret sharing (Shamir, CACM 1979) over GF(2^8), byte by byte: a secret of any length, t-of-n with
 * n ≤ 255. The field is AES's (x^8 + x^4 + x^3 + x + 1) with log/exp tables over the generator 3. A share is
 * its x-coordinate (1..255) and one y byte per secret byte. Polynomial coefficients come from the CSPRNG.
 */
import { randomBytes } from '../random.ts';

const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    // multiply by the generator 3 = x + 1: x·2 ⊕ x, reducing by the field polynomial
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0);
    x &= 0xff;
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!;
}

const mul = (a: number, b: number) => (a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!);
const div = (a: number, b: number) => (a === 0 ? 0 : EXP[LOG[a]! + 255 - LOG[b]!]!);

export interface Share {
  x: number;
  y: Uint8Array;
}

export class ShamirError extends Error {
  override name = 'ShamirError';
}

/** Shares of `secret` at the given x-coordinates (distinct, 1..255); any `threshold` of them recover it. */
export function split(secret: Uint8Array, threshold: number, xs: number[]): Share[] {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > xs.length)
    throw new ShamirError(`threshold ${threshold} must be between 1 and the ${xs.length} shares`);
  if (new Set(xs).size !== xs.length || xs.some((x) => !Number.isInteger(x) || x < 1 || x > 255))
    throw new ShamirError('share x-coordinates must be distinct integers in 1..255');
  const coefficients = randomBytes(secret.length * (threshold - 1));
  return xs.map((x) => {
    const y = new Uint8Array(secret.length);
    for (let b = 0; b < secret.length; b++) {
      // Horner: a_{t-1} x^{t-1} + … + a_1 x + secret
      let acc = 0;
      for (let c = threshold - 2; c >= 0; c--) acc = mul(acc, x) ^ coefficients[b * (threshold - 1) + c]!;
      y[b] = mul(acc, x) ^ secret[b]!;
    }
    return { x, y };
  });
}

/** The secret from at least `threshold` shares (Lagrange interpolation at 0). More shares are fine; fewer give garbage, so callers count. */
export function combine(shares: Share[]): Uint8Array {
  return interpolateAt(shares, 0);
}

/**
 * The value at `x` of the polynomial through `shares` (Lagrange interpolation; x = 0 is the secret). With a verified
 * secret from t shares this evaluates the dealer's polynomial at any other share's x, which is how a bad share is
 * told from a good one (robust-reconstruct.ts).
 */
export function interpolateAt(shares: Share[], x: number): Uint8Array {
  if (!shares.length) throw new ShamirError('no shares');
  const len = shares[0]!.y.length;
  if (new Set(shares.map((s) => s.x)).size !== shares.length) throw new ShamirError('duplicate share x-coordinates');
  if (
    shares.some(
      (s) => !(s.y instanceof Uint8Array) || s.y.length !== len || !Number.isInteger(s.x) || s.x < 1 || s.x > 255,
    )
  )
    throw new ShamirError('shares of different lengths or bad x-coordinates');
  if (!Number.isInteger(x) || x < 0 || x > 255) throw new ShamirError(`cannot evaluate at x = ${x}`);
  const known = shares.find((s) => s.x === x);
  if (known) return known.y.slice();
  // Lagrange basis at x: l_i = Π_{j≠i} (x_j ⊕ x) / (x_j ⊕ x_i)   (subtraction is XOR in GF(2^8))
  const basis = shares.map((si, i) => {
    let num = 1,
      den = 1;
    shares.forEach((sj, j) => {
      if (i === j) return;
      num = mul(num, sj.x ^ x);
      den = mul(den, sj.x ^ si.x);
    });
    return div(num, den);
  });
  const out = new Uint8Array(len);
  for (let b = 0; b < len; b++) {
    let acc = 0;
    for (let i = 0; i < shares.length; i++) acc ^= mul(shares[i]!.y[b]!, basis[i]!);
    out[b] = acc;
  }
  return out;
}
