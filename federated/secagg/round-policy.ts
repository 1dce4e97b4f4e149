/**
 * What a device checks before it sends anything for a round, and again as the round narrows: the parameters must
 * keep its input private against the server that chose them (Bell et al., CCS 2020, §4; Bonawitz et al., CCS 2017,
 * §4 "Threat model"). A server is free to announce any parameters; a device that takes part anyway would reveal
 * what it should not, so every device refuses with UnsafeRoundError:
 *  - t ≤ k/2: two disjoint groups of t neighbours exist, so a server that shows each group a different survivor
 *    list collects both kinds of share of one device and unmasks its input alone;
 *  - t < 2: one neighbour (or the server with one share) holds the secret;
 *  - fewer than 3 contributors: with two, the other survivor subtracts its own input from the published sum.
 * Distributed-DP noise that is not sized for the cohort is checked in distributed-dp.ts (ddgaussProblem).
 * Pure: no I/O.
 */
import { SecAggError } from './messages.ts';

export class UnsafeRoundError extends SecAggError {
  override name = 'UnsafeRoundError';
}

/** Fewest inputs in a sum a device lets its input be part of. */
export const MIN_CONTRIBUTORS = 3;

export interface RoundPolicyParameters {
  neighbours: number;
  threshold: number;
  /** Fewest contributors the round announces it accepts (never taken below MIN_CONTRIBUTORS). */
  minContributors?: number;
}

/** Why these parameters void the privacy of a device's input, or undefined when they do not. */
export function roundParametersProblem(p: RoundPolicyParameters): string | undefined {
  const { neighbours: k, threshold: t } = p;
  if (!Number.isInteger(k) || !Number.isInteger(t) || k < 1 || k > 254)
    return `neighbours must be an integer in 1..254, got ${k}`;
  if (t < 2) return `threshold ${t} lets a single share reveal a secret; it must be at least 2`;
  if (t > k) return `threshold ${t} is larger than neighbours ${k}`;
  if (2 * t <= k)
    return `threshold ${t} is at most half of ${k} neighbours: two disjoint groups of ${t} could each be shown another survivor list and together reveal both kinds of share of one device (t must be > k/2, e.g. ${Math.floor(k / 2) + 1})`;
  if (
    p.minContributors !== undefined &&
    !(Number.isInteger(p.minContributors) && p.minContributors >= MIN_CONTRIBUTORS)
  ) {
    return `a round must need at least ${MIN_CONTRIBUTORS} contributors, got ${p.minContributors}: with two, each could subtract its own input from the sum`;
  }
  return undefined;
}

export function checkRoundParameters(p: RoundPolicyParameters): void {
  const problem = roundParametersProblem(p);
  if (problem) throw new UnsafeRoundError(`unsafe round: ${problem}`);
}

/** Fewest contributors a device accepts for this round. */
export const minContributors = (p: { minContributors?: number }) => Math.max(MIN_CONTRIBUTORS, p.minContributors ?? 0);
