/**
 * Randomness from the platform CSPRNG (crypto.getRandomValues: Web Crypto in workerd, browsers and Node), for keys,
 * seeds, nonces, ids, rounding coins, sampling and noise. Seeded, reproducible streams are not here: SecAgg+'s mask
 * expansion is protocol (secagg/prg.ts), and data shuffles and seeded sampling are seeded-random.ts.
 */

/**
 * Most bytes one getRandomValues call fills (Web Crypto: a QuotaExceededError above it). A platform limit, not a
 * chunk size anything else shares.
 */
export const MAX_RANDOM_VALUES_BYTES = 65_536;

/** `n` bytes from the CSPRNG, any n (filled in calls of at most MAX_RANDOM_VALUES_BYTES). */
export function randomBytes(n: number): Uint8Array {
  if (!(Number.isSafeInteger(n) && n >= 0))
    throw new RangeError(`randomBytes: n must be a non-negative integer, got ${n}`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += MAX_RANDOM_VALUES_BYTES)
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + MAX_RANDOM_VALUES_BYTES)));
  return out;
}

/** `n` uniform 32-bit words from the CSPRNG (little-endian, as every supported host is). */
export function randomWords(n: number): Uint32Array {
  if (!(Number.isSafeInteger(n) && n >= 0))
    throw new RangeError(`randomWords: n must be a non-negative integer, got ${n}`);
  // A fresh buffer starts at offset 0, so the words are aligned.
  return new Uint32Array(randomBytes(4 * n).buffer);
}

/** 2^−53: the spacing of doubles in [0.5, 1), so k·2^−53 for k < 2^53 is exact. */
const ULP = 2 ** -53;

/**
 * A uniform double in [0, 1) with all 53 bits of the mantissa random, from two random words: 27 high bits of `hi`,
 * 26 of `lo`. (One word over 2^32 would leave the low 21 bits zero — too coarse where a probability is compared with
 * exp(−x), as the discrete Gaussian's Bernoulli coins do.) Add 2^−53 for (0, 1], where 0 must not occur (a log).
 */
export function unitFloat(hi: number, lo: number): number {
  return ((hi >>> 5) * 67108864 + (lo >>> 6)) * ULP;
}
