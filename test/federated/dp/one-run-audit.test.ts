/**
 * The one-run audit bound (federated/dp/one-run-audit.ts; Steinke, Nasr & Jagielski, NeurIPS 2023): known values,
 * the closed form when every guess is right, monotonicity, the δ term, guess selection and the Bonferroni audit.
 */
import { describe, expect, it } from 'vitest';
import {
  countCorrect,
  oneRunAudit,
  oneRunEpsilonLowerBound,
  oneRunPValue,
  sampleInclusion,
  selectGuesses,
} from '../../../federated/dp/one-run-audit.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';

const bound = (canaries: number, guesses: number, correct: number, delta = 0, confidence = 0.95) =>
  oneRunEpsilonLowerBound({ canaries, guesses, correct, delta, confidence });

describe('the ε lower bound', () => {
  // Computed independently in Python with scipy 1.17.1: p = binom.sf(v−1, r, expit(ε)) + 2mδ·max_i (binom.sf(v−i−1,
  // r, q) − binom.sf(v−1, r, q))/i (the paper's p-value, as google-deepmind/jax_privacy `_one_run_p_value` writes
  // it), the bound by brentq on β − p(ε) to xtol 1e-12.
  const cases: [m: number, r: number, v: number, delta: number, confidence: number, epsilon: number][] = [
    [1000, 100, 100, 0, 0.95, 3.4929654311523075],
    [1000, 200, 180, 0, 0.95, 1.7988652649778916],
    [1000, 200, 180, 1e-5, 0.95, 1.7962850706709352],
    [1000, 800, 800, 1e-5, 0.99, 5.09180973924358],
    [500, 50, 40, 1e-5, 0.95, 0.7712269040297055],
    [100, 100, 100, 1e-3, 0.95, 3.2023037533133007],
    [1000, 1000, 900, 1e-5, 0.95, 2.020645595865434],
  ];
  for (const [m, r, v, delta, confidence, epsilon] of cases) {
    it(`m ${m}, ${v} of ${r} correct, δ ${delta}, ${confidence * 100} %: ε ≥ ${epsilon.toFixed(4)}`, () => {
      expect(bound(m, r, v, delta, confidence)).toBeCloseTo(epsilon, 8);
    });
  }

  it('p-values match scipy', () => {
    expect(oneRunPValue({ canaries: 1000, guesses: 100, correct: 90, epsilon: 1, delta: 1e-5 })).toBeCloseTo(
      0.0008412885614385309,
      12,
    );
    expect(oneRunPValue({ canaries: 1000, guesses: 100, correct: 90, epsilon: 1 })).toBeCloseTo(
      2.7358128007661584e-5,
      14,
    );
    expect(oneRunPValue({ canaries: 200, guesses: 60, correct: 50, epsilon: 2, delta: 1e-3 })).toBeCloseTo(
      0.9229397933728971,
      12,
    );
  });

  it('all r guesses right, δ = 0: the closed form log(q/(1−q)), q = β^(1/r), growing with r', () => {
    let last = 0;
    for (const r of [10, 30, 100, 300, 1000]) {
      const q = 0.05 ** (1 / r);
      const eps = bound(1000, r, r);
      expect(eps).toBeCloseTo(Math.log(q / (1 - q)), 7);
      expect(eps).toBeGreaterThan(last);
      last = eps;
    }
  });

  it('half the guesses right gives 0; so do too few guesses to mean anything', () => {
    for (const r of [10, 100, 1000]) expect(bound(1000, r, r / 2)).toBe(0);
    expect(bound(1000, 0, 0)).toBe(0);
    expect(bound(1000, 4, 4)).toBe(0); // (1/2)^4 = 0.0625 > 0.05: four right out of four is not evidence
    expect(bound(1000, 5, 5)).toBeGreaterThan(0); // 0.03125 < 0.05
  });

  it('grows with the correct guesses and with the confidence given up; δ only lowers it', () => {
    let last = -1;
    for (let v = 100; v <= 200; v += 10) {
      const eps = bound(1000, 200, v, 1e-5);
      expect(eps).toBeGreaterThanOrEqual(last);
      last = eps;
    }
    expect(bound(1000, 200, 170, 0, 0.9)).toBeGreaterThan(bound(1000, 200, 170, 0, 0.95));
    expect(bound(1000, 200, 170, 0, 0.95)).toBeGreaterThan(bound(1000, 200, 170, 0, 0.99));
    expect(bound(1000, 200, 170, 1e-5)).toBeLessThan(bound(1000, 200, 170, 0));
    expect(bound(1000, 200, 170, 1e-4)).toBeLessThan(bound(1000, 200, 170, 1e-5));
  });

  it('the p-value is nondecreasing in ε (what makes the bisection exact), and the bound is where it crosses β', () => {
    for (const [m, r, v, delta] of [
      [1000, 200, 150, 1e-5],
      [100, 60, 59, 5e-3],
      [50, 50, 30, 1e-2],
    ] as const) {
      let last = 0;
      for (let eps = 0; eps <= 8; eps += 0.01) {
        const p = oneRunPValue({ canaries: m, guesses: r, correct: v, epsilon: eps, delta });
        expect(p).toBeGreaterThanOrEqual(last - 1e-12); // sums of pmfs near 1 round at ~1e-14
        last = p;
      }
      const eps = bound(m, r, v, delta);
      if (eps > 0) {
        expect(oneRunPValue({ canaries: m, guesses: r, correct: v, epsilon: eps, delta })).toBeLessThan(0.05);
        expect(
          oneRunPValue({ canaries: m, guesses: r, correct: v, epsilon: eps + 1e-6, delta }),
        ).toBeGreaterThanOrEqual(0.05);
      }
    }
  });

  it('refuses impossible counts and a vacuous δ', () => {
    expect(() => bound(100, 50, 51)).toThrow(RangeError);
    expect(() => bound(100, 101, 50)).toThrow(RangeError);
    expect(() => bound(100, 50, 2.5)).toThrow(RangeError);
    expect(() => bound(100, 50, 40, 0.01)).toThrow(/2·m·δ ≤ 1/);
    expect(() => bound(100, 50, 40, 0, 1)).toThrow(RangeError);
  });
});

describe('guesses', () => {
  it('"in" for the k₊ highest scores, "out" for the k₋ lowest, abstain between; ties by index', () => {
    const g = selectGuesses([0.5, 3, -1, 2, 2, -4, 0], 2, 2);
    expect(Array.from(g)).toEqual([0, 1, -1, 1, 0, -1, 0]);
    expect(countCorrect(g, [false, true, false, false, true, false, true])).toEqual({ guesses: 4, correct: 3 });
    expect(() => selectGuesses([1, 2, 3], 2, 2)).toThrow(RangeError);
    expect(() => selectGuesses([1, NaN, 3], 1, 1)).toThrow(/NaN/);
  });

  it('inclusion: independent fair coins from the given source, reproducible from a seed', () => {
    const a = sampleInclusion(10_000, seededRandom(7));
    expect(sampleInclusion(10_000, seededRandom(7))).toEqual(a);
    const inside = a.filter(Boolean).length;
    expect(Math.abs(inside - 5000)).toBeLessThan(4 * 50); // 4 standard deviations
  });

  it('the audit: perfect scores give the all-correct bound of the largest rule at β / rules; random scores give 0', () => {
    const random = seededRandom(11);
    const included = sampleInclusion(1000, random);
    const perfect = included.map((inc) => (inc ? 1 : 0) + random() * 1e-3);
    const rules = [
      { kPlus: 10, kMinus: 10 },
      { kPlus: 100, kMinus: 100 },
      { kPlus: 300, kMinus: 300 },
    ];
    const audit = oneRunAudit({ scores: perfect, included, rules, delta: 1e-5 });
    expect(audit.best).toMatchObject({ kPlus: 300, guesses: 600, correct: 600 });
    expect(audit.epsilon).toBeCloseTo(bound(1000, 600, 600, 1e-5, 1 - 0.05 / 3), 10);
    expect(audit.rules.map((r) => r.correct)).toEqual([20, 200, 600]);
    const noise = oneRunAudit({ scores: included.map(() => random()), included, rules, delta: 1e-5 });
    expect(noise.epsilon).toBe(0);
  });
});
