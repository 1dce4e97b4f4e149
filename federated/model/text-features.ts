/**
 * Text → fixed-length float vector by signed feature hashing ("the hashing trick", Weinberger et al., ICML 2009,
 * §2: a second hash bit chooses the sign so collisions cancel in expectation). No vocabulary to ship or keep in
 * sync: the device, the edge's callers and the trainer compute the same vector from the same text with this
 * function and the spec's `features` settings. Pure; no I/O.
 *
 * Steps: lowercase → tokens (runs of letters/digits, plus `$` and `!`, which carry signal in mail) → unigrams and,
 * with `ngrams: 2`, adjacent bigrams → FNV-1a 32-bit hash → bucket = h mod buckets, sign = top bit → per bucket
 * sign(v)·log(1 + |v|) (sublinear term frequency) → L2 normalisation (long and short messages on one scale).
 */

export interface HashedBagOfWords {
  kind: 'hashedBagOfWords';
  /** Vector length; the model's inputShape is [buckets]. */
  buckets: number;
  /** 1 = words, 2 = words and adjacent word pairs. */
  ngrams: 1 | 2;
  /** Characters read from the text; the rest is ignored (bounds the work per example). */
  maxChars: number;
}

const TOKEN = /[\p{L}\p{N}$!]+/gu;

/** FNV-1a over UTF-16 code units (32-bit, unsigned). Stable across engines: it is plain integer arithmetic. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function tokenize(text: string, maxChars: number): string[] {
  return text.slice(0, maxChars).toLowerCase().match(TOKEN) ?? [];
}

/** One example's feature vector (length `buckets`). Written into `out` at `offset` when given. */
export function hashText(
  text: string,
  f: HashedBagOfWords,
  out = new Float32Array(f.buckets),
  offset = 0,
): Float32Array {
  const counts = new Float64Array(f.buckets);
  const tokens = tokenize(text, f.maxChars);
  const add = (gram: string) => {
    const h = fnv1a(gram);
    const b = h % f.buckets;
    counts[b] = counts[b]! + (h & 0x80000000 ? -1 : 1);
  };
  for (let i = 0; i < tokens.length; i++) {
    add(tokens[i]!);
    // A separator no token can contain, so "a b" as a bigram never collides with a token "ab".
    if (f.ngrams === 2 && i + 1 < tokens.length) add(`${tokens[i]} ${tokens[i + 1]}`);
  }
  let norm = 0;
  for (let b = 0; b < f.buckets; b++) {
    const v = counts[b]!;
    const s = v === 0 ? 0 : Math.sign(v) * Math.log1p(Math.abs(v));
    counts[b] = s;
    norm += s * s;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let b = 0; b < f.buckets; b++) out[offset + b] = counts[b]! * scale;
  return out;
}

/** Many examples as one row-major [n, buckets] matrix. */
export function hashTexts(texts: readonly string[], f: HashedBagOfWords): Float32Array {
  const out = new Float32Array(texts.length * f.buckets);
  texts.forEach((t, i) => hashText(t, f, out, i * f.buckets));
  return out;
}
