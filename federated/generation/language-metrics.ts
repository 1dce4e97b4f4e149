/**
 * Next-token metrics of a language model on text: the summed negative log-likelihood (perplexity = exp(nll / count))
 * and top-1 accuracy — what Gboard's papers report as perplexity and recall@1 — from one window's logits. Pure; the
 * caller runs the model.
 */
export interface NextTokenScore {
  nll: number;
  correct: number;
  count: number;
}

/** Scores `logits` ([positions, vocab], row-major) against `targets` (the token after each position). */
export function scoreNextTokens(logits: Float32Array, vocab: number, targets: ArrayLike<number>): NextTokenScore {
  let nll = 0,
    correct = 0;
  for (let p = 0; p < targets.length; p++) {
    const row = logits.subarray(p * vocab, (p + 1) * vocab);
    let max = row[0]!,
      best = 0;
    for (let v = 1; v < vocab; v++)
      if (row[v]! > max) {
        max = row[v]!;
        best = v;
      }
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(row[v]! - max);
    const target = targets[p]!;
    nll += max + Math.log(sum) - row[target]!;
    if (best === target) correct++;
  }
  return { nll, correct, count: targets.length };
}

export const addScores = (a: NextTokenScore, b: NextTokenScore): NextTokenScore => ({
  nll: a.nll + b.nll,
  correct: a.correct + b.correct,
  count: a.count + b.count,
});

export const perplexity = (s: NextTokenScore): number => Math.exp(s.nll / s.count);
