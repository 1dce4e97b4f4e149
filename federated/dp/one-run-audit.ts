/**
 * One-run privacy audit: the empirical ε lower bound of Steinke, Nasr & Jagielski, "Privacy Auditing with One (1)
 * Training Run" (NeurIPS 2023, arXiv:2305.08846). Pure math, no I/O.
 *
 * The game. m canaries; each is put into the training set independently with probability 1/2 (S_i ∈ {−1, +1}
 * uniform; {@link sampleInclusion}). Training runs once. The auditor then scores every canary from the trained model
 * alone — never from S — and guesses "in" for the k₊ highest scores, "out" for the k₋ lowest, and abstains on the
 * rest ({@link selectGuesses}): r = k₊ + k₋ guesses, v of them correct ({@link countCorrect}).
 *
 * The bound (their main theorem, Thm. 3.1 of arXiv:2305.08846; the p-value as the paper's own code computes it,
 * which google-deepmind/jax_privacy `auditing.py` `_one_run_p_value` reproduces). If training
 * is (ε, δ)-DP with respect to adding or removing any one canary, then, with f(v) = P[W ≥ v] for
 * W ~ Binomial(r, e^ε/(1+e^ε)) — the accuracy of ε-randomised response on r independent bits —
 *
 *   P[≥ v correct]  ≤  f(v) + 2mδ · max_{1≤i≤v} (f(v−i) − f(v)) / i                                (p-value)
 *
 * For δ = 0 this is the stochastic domination of the number of correct guesses by Binomial(r, e^ε/(1+e^ε)); the
 * second term is what δ > 0 costs (the max over i ≤ v is the max over all i ∈ [m]: for i > v the numerator stays
 * 1 − f(v)). {@link oneRunEpsilonLowerBound} returns inf{ε ≥ 0 : p(ε) ≥ β}, β = 1 − confidence.
 *
 * What the number means. With probability ≥ 1 − β over the canaries' coin flips (and training's own randomness),
 * the training run is NOT (ε, δ)-DP for any ε below the reported value, at the δ given. So a reported value above the
 * accountant's ε (at the same δ) means the implementation or its accounting is wrong, with 95 % confidence; a value
 * below it proves nothing about the upper bound: it is only as strong as the canaries and the score. Passing δ = 0
 * gives a bound on pure ε-DP only: it is larger than the δ > 0 bound, and it does NOT contradict an (ε, δ > 0)
 * claim — compare a δ = 0 figure with an accountant's (ε, δ) only as "ε-DP is refuted", never as "(ε, δ) is".
 * The reported value is exact, not a grid point: p(ε) is nondecreasing in ε whenever 2mδ ≤ 1 (d/dq P[Bin(r,q) ≥ k] =
 * r·P[Bin(r−1,q) = k−1], so the δ term falls at most 2mδ times as fast as f(v) rises), which is required here, so
 * bisection finds the first ε where the claim can no longer be rejected.
 *
 * Several guess rules (k₊, k₋) may be tried on one run only with a correction: {@link oneRunAudit} tests each at
 * β / (number of rules) (Bonferroni) and reports the largest bound, which then holds at confidence 1 − β overall.
 * The rules must be fixed before the scores are seen.
 */
import { logFactorial } from './special.ts';

export interface OneRunCounts {
  /** m: canaries, each included independently with probability 1/2 (the δ term scales with it) */
  canaries: number;
  /** r: guesses made (abstentions excluded) */
  guesses: number;
  /** v: correct guesses */
  correct: number;
}

function checkCounts({ canaries: m, guesses: r, correct: v }: OneRunCounts, delta: number): void {
  if (![m, r, v].every(Number.isInteger) || !(0 <= v && v <= r && r <= m))
    throw new RangeError(`need integers 0 ≤ correct ≤ guesses ≤ canaries, got ${v}, ${r}, ${m}`);
  if (!(delta >= 0 && 2 * m * delta <= 1))
    throw new RangeError(`need 0 ≤ δ and 2·m·δ ≤ 1 (the bound is vacuous beyond), got δ = ${delta}, m = ${m}`);
}

/** P[Binomial(r, q) = j] for j = 0..r, q = e^ε/(1+e^ε), in double precision via log-factorials. */
function binomialPmf(r: number, epsilon: number): Float64Array {
  const logQ = -Math.log1p(Math.exp(-epsilon)),
    log1mQ = -epsilon - Math.log1p(Math.exp(-epsilon)); // stable for large ε
  const lr = logFactorial(r);
  const pmf = new Float64Array(r + 1);
  for (let j = 0; j <= r; j++)
    pmf[j] = Math.exp(lr - logFactorial(j) - logFactorial(r - j) + j * logQ + (r - j) * log1mQ);
  return pmf;
}

/**
 * The p-value of v or more correct out of r guesses under the hypothesis "(ε, δ)-DP": the bound on P[≥ v correct]
 * above, capped at 1. Small means the hypothesis is implausible.
 */
export function oneRunPValue(counts: OneRunCounts & { epsilon: number; delta?: number }): number {
  const { canaries: m, guesses: r, correct: v, epsilon, delta = 0 } = counts;
  checkCounts(counts, delta);
  if (!(epsilon >= 0)) throw new RangeError(`epsilon must be ≥ 0, got ${epsilon}`);
  if (v === 0) return 1;
  const pmf = binomialPmf(r, epsilon);
  let tail = 0; // f(v) = P[W ≥ v], summed from the small end for accuracy
  for (let j = r; j >= v; j--) tail += pmf[j]!;
  let alpha = 0,
    window = 0; // window = f(v−i) − f(v) = P[v−i ≤ W < v]
  if (delta > 0) {
    for (let i = 1; i <= v; i++) {
      window += pmf[v - i]!;
      alpha = Math.max(alpha, window / i);
    }
  }
  return Math.min(1, tail + 2 * m * delta * alpha);
}

/**
 * The empirical ε lower bound at confidence 1 − β: inf{ε ≥ 0 : p(ε) ≥ β}; 0 when the guesses cannot reject even
 * ε = 0. Accurate to about 1e-9 in ε.
 */
export function oneRunEpsilonLowerBound(counts: OneRunCounts & { delta?: number; confidence?: number }): number {
  const { delta = 0, confidence = 0.95 } = counts;
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  const beta = 1 - confidence;
  const p = (epsilon: number) => oneRunPValue({ ...counts, epsilon, delta });
  if (p(0) >= beta) return 0;
  let lo = 0,
    hi = 1;
  // All r guesses right at ε = 60 has p ≥ (1 − e^−60)^r ≈ 1: the search always brackets for any r a run can have.
  while (p(hi) < beta) {
    lo = hi;
    hi *= 2;
    if (hi > 1024) return Infinity;
  }
  for (let it = 0; it < 60 && hi - lo > 1e-10; it++) {
    const mid = (lo + hi) / 2;
    if (p(mid) < beta) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Each of m canaries in (true) or out (false), independently with probability 1/2. `random` returns uniforms in
 * [0, 1): a seeded PRNG for a reproducible audit, or a CSPRNG. The bound rests on exactly this coin flip.
 */
export function sampleInclusion(m: number, random: () => number): boolean[] {
  return Array.from({ length: m }, () => random() < 0.5);
}

/**
 * Guesses from scores (higher = more likely in): +1 ("in") for the kPlus highest, −1 ("out") for the kMinus lowest,
 * 0 (abstain) for the rest. Ties are broken by canary index, so the guesses depend on the scores alone.
 */
export function selectGuesses(scores: ArrayLike<number>, kPlus: number, kMinus: number): Int8Array {
  const m = scores.length;
  if (!(Number.isInteger(kPlus) && Number.isInteger(kMinus) && kPlus >= 0 && kMinus >= 0 && kPlus + kMinus <= m))
    throw new RangeError(`need integers kPlus, kMinus ≥ 0 with kPlus + kMinus ≤ ${m}, got ${kPlus}, ${kMinus}`);
  for (let i = 0; i < m; i++) if (Number.isNaN(scores[i])) throw new RangeError(`score ${i} is NaN`);
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const guesses = new Int8Array(m);
  for (let j = 0; j < kPlus; j++) guesses[order[j]!] = 1;
  for (let j = 0; j < kMinus; j++) guesses[order[m - 1 - j]!] = -1;
  return guesses;
}

/** r (non-abstaining guesses) and v (those that match the truth). */
export function countCorrect(guesses: Int8Array, included: readonly boolean[]): { guesses: number; correct: number } {
  if (guesses.length !== included.length)
    throw new RangeError(`${guesses.length} guesses for ${included.length} canaries`);
  let r = 0,
    v = 0;
  guesses.forEach((g, i) => {
    if (g === 0) return;
    r++;
    if ((g === 1) === included[i]) v++;
  });
  return { guesses: r, correct: v };
}

export interface GuessRule {
  kPlus: number;
  kMinus: number;
}

export interface OneRunAuditResult {
  /** the largest bound over the rules, each tested at β / rules.length: holds at `confidence` overall */
  epsilon: number;
  /** the rule that gave it, with its counts */
  best: GuessRule & { guesses: number; correct: number; epsilon: number };
  rules: (GuessRule & { guesses: number; correct: number; epsilon: number })[];
  confidence: number;
  delta: number;
}

/**
 * The whole audit from scores: each rule's guesses and counts, its bound at confidence 1 − β/rules.length, and the
 * largest. `included` is used only to count correct guesses.
 */
export function oneRunAudit(opts: {
  scores: ArrayLike<number>;
  included: readonly boolean[];
  rules: readonly GuessRule[];
  delta?: number;
  confidence?: number;
}): OneRunAuditResult {
  const { scores, included, rules, delta = 0, confidence = 0.95 } = opts;
  if (!rules.length) throw new RangeError('give at least one guess rule');
  const perRule = 1 - (1 - confidence) / rules.length;
  const results = rules.map((rule) => {
    const counts = countCorrect(selectGuesses(scores, rule.kPlus, rule.kMinus), included);
    return {
      ...rule,
      ...counts,
      epsilon: oneRunEpsilonLowerBound({ canaries: included.length, ...counts, delta, confidence: perRule }),
    };
  });
  const best = results.reduce((a, b) => (b.epsilon > a.epsilon ? b : a));
  return { epsilon: best.epsilon, best, rules: results, confidence, delta };
}
