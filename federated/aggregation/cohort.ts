/**
 * Poisson cohort sampling (TaskSettings.cohort): when a round's check-in closes, each device that checked in is in
 * the round with probability q — SHA-256(seed ‖ device) read as a uniform number below q — and the others sit it
 * out. The seed is drawn when the round opens and only its SHA-256 is published until check-in closes
 * (commit–reveal), so neither devices nor the server can steer who is drawn once devices have checked in, and every
 * device can check the draw. With each device in a round with probability at most q, independently, the client-level
 * accountant may amplify by subsampling with that q (Abadi et al. 2016; McMahan et al. 2018, §2) — the number of
 * enrolled devices, Sybils included, does not enter it. Pure.
 */
import { concat, utf8 } from '../bytes.ts';
import { sha256 } from '../secagg/primitives.ts';

/** Whether `device` is drawn into the cohort of the round with `seed`, at sample rate `q`. */
export async function drawn(seed: Uint8Array, device: string, q: number): Promise<boolean> {
  const h = await sha256(concat(utf8('fedge-cohort/v1'), seed, utf8(device)));
  // 48 uniform bits as a number in [0, 1).
  const u =
    (h[0]! * 2 ** 40 + h[1]! * 2 ** 32 + ((h[2]! << 24) >>> 0) + (h[3]! << 16) + (h[4]! << 8) + h[5]!) / 2 ** 48;
  return u < q;
}

/** The devices of `checkedIn` drawn at rate `q` with `seed`, in the same order. */
export async function drawCohort(seed: Uint8Array, checkedIn: readonly string[], q: number): Promise<string[]> {
  const keep = await Promise.all(checkedIn.map((d) => drawn(seed, d, q)));
  return checkedIn.filter((_, i) => keep[i]);
}

/** The published commitment to a round's cohort seed. */
export const cohortCommitment = (seed: Uint8Array): Promise<Uint8Array> => sha256(seed);

/**
 * Why the revealed `seed` does not explain `roster` (the devices in the round) under `commitment` and rate `q` —
 * checked by each device before it shares keys — or undefined when it does.
 */
export async function cohortProblem(
  seed: Uint8Array,
  commitment: Uint8Array,
  q: number,
  roster: readonly string[],
): Promise<string | undefined> {
  const c = await cohortCommitment(seed);
  if (c.length !== commitment.length || c.some((b, i) => b !== commitment[i]))
    return 'the revealed cohort seed is not the one committed when the round opened';
  for (const d of roster) if (!(await drawn(seed, d, q))) return `${d} is in the round but was not drawn`;
  return undefined;
}
