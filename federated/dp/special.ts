/** Special functions the accountants need, in double precision: log-sum helpers, log C(n, k), log erfc. */

export function logAdd(a: number, b: number): number {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log(e^a − e^b) for a ≥ b. */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError('logSub: the result would be negative');
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  return Math.log(Math.expm1(a - b)) + b;
}

const LOG_FACTORIAL: number[] = [0];
export function logFactorial(n: number): number {
  for (let i = LOG_FACTORIAL.length; i <= n; i++) LOG_FACTORIAL[i] = LOG_FACTORIAL[i - 1]! + Math.log(i);
  return LOG_FACTORIAL[n]!;
}

/** log |C(α, i)| for real α ≥ 0 and integer i ≥ 0, with its sign (the generalised binomial coefficient). */
export function logBinomial(alpha: number, i: number): { log: number; sign: 1 | -1 } {
  let log = 0;
  let sign: 1 | -1 = 1;
  for (let j = 0; j < i; j++) {
    const f = (alpha - j) / (j + 1);
    if (f === 0) return { log: -Infinity, sign: 1 };
    if (f < 0) sign = sign === 1 ? -1 : 1;
    log += Math.log(Math.abs(f));
  }
  return { log, sign };
}

/**
 * log erfc(x). For x < 2.5: erfc = 1 − erf with erf from its Taylor series (terms grow at most ~e^{x²} ≈ 500, so
 * ~13 correct digits). For x ≥ 2.5: the continued fraction erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/…)))
 * evaluated with modified Lentz, kept in log space so huge x does not underflow.
 */
export function logErfc(x: number): number {
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 2.5) {
    let term = x,
      sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.log1p((-2 / Math.sqrt(Math.PI)) * sum);
  }
  // Lentz for K = x + a1/(x + a2/(x + …)), a_k = k/2
  const tiny = 1e-300;
  let f = x,
    c = x,
    d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - 0.5 * Math.log(Math.PI) - Math.log(f);
}
