/**
 * Reconstructing a secret from Shamir shares some of which may be bad (a device that revealed garbage), when the
 * secret can be checked: SecAgg+'s server checks a self-mask seed against the owner's SHA-256 commitment and a
 * mask key against the owner's advertised public key (Bonawitz et al., CCS 2017, §4 "robustness"; Bell et al.,
 * CCS 2020, §4 — with more than t shares an honest subset of t still reconstructs).
 *
 * Any t correct shares give the right secret, and a single wrong share in a t-subset changes the secret (its
 * Lagrange coefficient at 0 is never zero). Each device reveals one share per owner, so one cheating device puts
 * at most one wrong share into any owner's set: a subset whose secret passes the check then holds only correct
 * shares (up to a SHA-256 collision), and the shares off its polynomial are exactly the wrong ones. (Several
 * colluding devices can craft wrong shares that cancel in some subset: the secret is still the checked one, so the
 * sum stays right, but the shares named as bad may then be honest ones — `bad` names suspects.) Subsets are tried
 * cheapest first — the first t, then every t-subset of the first
 * t + 1 that contains the (t+1)-th, and so on — within a bounded number of tries, so one device cannot make the
 * server spend unbounded time. Once the secret is known, the polynomial through the good subset is evaluated at
 * every other share's x: shares that do not lie on it are named, so their senders can be excluded.
 * Pure: no I/O.
 */
import { equal } from '../bytes.ts';
import { type Share, ShamirError, combine, interpolateAt } from './shamir.ts';

export interface HeldShare extends Share {
  /** Who revealed this share. */
  holder: string;
}

export interface Reconstruction {
  secret: Uint8Array;
  /** Holders whose share does not lie on the dealer's polynomial. */
  bad: string[];
}

/** Most t-subsets tried for one secret (each costs one interpolation and one check). */
export const MAX_SUBSET_TRIES = 2048;

/** Indices of the next t-subsets of [0, m) that contain m − 1, lexicographically (none already tried with m − 1 shares). */
function* subsetsEndingAt(m: number, t: number): Generator<number[]> {
  const pick = Array.from({ length: t - 1 }, (_, i) => i);
  if (t - 1 > m - 1) return;
  for (;;) {
    yield [...pick, m - 1];
    let i = t - 2;
    while (i >= 0 && pick[i] === m - 1 - (t - 1) + i) i--;
    if (i < 0) return;
    pick[i]!++;
    for (let j = i + 1; j < t - 1; j++) pick[j] = pick[j - 1]! + 1;
  }
}

/**
 * The secret `check` accepts, from `shares` (already well-formed: distinct x in 1..255, equal lengths) with
 * threshold t, and which holders revealed bad shares; undefined when no checked secret was found within the budget
 * (fewer than t good shares, or too many bad ones to search). `shares` in the order to trust them (known
 * cheaters last).
 */
export async function reconstructChecked(
  shares: HeldShare[],
  t: number,
  check: (secret: Uint8Array) => Promise<boolean>,
  maxTries = MAX_SUBSET_TRIES,
): Promise<Reconstruction | undefined> {
  if (t < 1 || shares.length < t) return undefined;
  let tries = 0;
  for (let m = t; m <= shares.length; m++) {
    for (const idx of subsetsEndingAt(m, t)) {
      if (++tries > maxTries) return undefined;
      const subset = idx.map((i) => shares[i]!);
      let secret: Uint8Array;
      try {
        secret = combine(subset);
      } catch (e) {
        if (e instanceof ShamirError) continue;
        throw e;
      }
      if (!(await check(secret))) continue;
      const inSubset = new Set(idx);
      const bad = shares
        .filter((s, i) => !inSubset.has(i) && !equal(interpolateAt(subset, s.x), s.y))
        .map((s) => s.holder);
      return { secret, bad };
    }
  }
  return undefined;
}
