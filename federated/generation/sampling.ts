/**
 * Picks the next token from one row of logits, as transformers' LogitsProcessors do in order: temperature, top-k,
 * top-p (nucleus: the fewest most-likely tokens whose probability adds up to top_p, at least one), then a draw.
 * Temperature 0 is greedy: the argmax, ties to the lowest id — deterministic, the same at the edge and on devices.
 */
export interface Sampling {
  /** 0: greedy. */
  temperature: number;
  /** 0: off. */
  topK: number;
  /** 1: off. */
  topP: number;
}

export function argmax(logits: Float32Array, from = 0, to = logits.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (logits[i]! > logits[best]!) best = i;
  return best - from;
}

/** The id drawn from `logits[from, to)`; `random` gives uniforms in [0, 1) (seeded when the request has a seed). */
export function pickToken(
  logits: Float32Array,
  sampling: Sampling,
  random: () => number,
  from = 0,
  to = logits.length,
): number {
  if (sampling.temperature === 0) return argmax(logits, from, to);
  const n = to - from;
  let order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => logits[from + b]! - logits[from + a]! || a - b);
  if (sampling.topK > 0 && sampling.topK < n) order = order.slice(0, sampling.topK);
  const top = logits[from + order[0]!]!;
  const weights = order.map((i) => Math.exp((logits[from + i]! - top) / sampling.temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  if (sampling.topP < 1) {
    let kept = 0,
      mass = 0;
    while (kept < weights.length && mass < sampling.topP * total) mass += weights[kept++]!;
    order = order.slice(0, Math.max(1, kept));
    weights.length = order.length;
    total = mass || weights[0]!;
  }
  let u = random() * total;
  for (let k = 0; k < order.length; k++) {
    u -= weights[k]!;
    if (u < 0) return order[k]!;
  }
  return order[order.length - 1]!;
}
