/**
 * Next-word suggestions, as a phone keyboard shows them: the few likeliest whole words after the text so far, from
 * any language model that gives next-token logits (the edge's OIP infer, LocalModel on the device, or the device's
 * own fine-tuned LanguageModelTrainer) — the same code for each, so the columns differ only by their models.
 *
 * The candidates are the likeliest next tokens that begin a word (SentencePiece's word marker ▁), best first; each
 * is extended greedily (the argmax token) until the next token would begin another word, be punctuation or a special
 * token, or `maxTokens` are reached — so "▁wh" + "ale" gives "whale". Words without a letter or digit, and repeats,
 * are dropped. The extensions of every candidate run together: one batch of equal-length rows a step.
 */

/** Next-token logits for each row of token ids (rows of equal length): the last position's, one row of `vocab` each. */
export type NextLogits = (rows: number[][]) => Promise<Float32Array[]>;

/** What the suggestions need of a tokenizer: each id's piece, the special ids, and decoding. */
export interface Vocabulary {
  /** Each token id's piece as tokenizer.json spells it (SentencePiece: ▁ marks a word's start). */
  pieces: readonly string[];
  /** Ids never suggested nor continued through (padding, BOS, EOS, unknown). */
  special: ReadonlySet<number>;
  decode(ids: readonly number[]): string;
}

export interface NextWordOptions {
  /** Words to return (default 3). */
  count?: number | undefined;
  /** First tokens to extend (default 6): more than `count`, as some extend to the same word or to no word. */
  candidates?: number | undefined;
  /** Most tokens a word takes (default 4). */
  maxTokens?: number | undefined;
  /** Only the last this many tokens of the text are read (default 24): a keyboard's context is short. */
  context?: number | undefined;
}

export const WORD_MARK = '▁';
const BYTE = /^<0x([0-9A-Fa-f]{2})>$/;
const PUNCTUATION = /^[\p{P}\p{S}]/u;
const HAS_WORD = /[\p{L}\p{N}]/u;

/** Whether the piece begins a word. */
export const beginsWord = (piece: string) => piece.startsWith(WORD_MARK);

/**
 * Whether a word ends before this piece: it begins another word, is punctuation, or is an ASCII byte (a newline or
 * a control character, as byte-fallback spells them); a non-ASCII byte (part of a letter such as é) continues it.
 */
export function endsWord(piece: string): boolean {
  const byte = BYTE.exec(piece);
  if (byte) return Number.parseInt(byte[1]!, 16) < 0x80;
  return beginsWord(piece) || PUNCTUATION.test(piece) || piece === '';
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** The `k` ids with the largest logits among those `keep` accepts, largest first (ties: the lower id). */
export function topIds(row: Float32Array, k: number, keep: (id: number) => boolean): number[] {
  const top: number[] = [];
  for (let id = 0; id < row.length; id++) {
    if (!keep(id)) continue;
    const v = row[id]!;
    if (top.length === k && v <= row[top[k - 1]!]!) continue;
    let at = top.length;
    while (at > 0 && row[top[at - 1]!]! < v) at--;
    top.splice(at, 0, id);
    if (top.length > k) top.pop();
  }
  return top;
}

/** The likeliest next words after `ids` (the text's tokens, the last word finished), best first. */
export async function nextWords(
  ids: readonly number[],
  next: NextLogits,
  vocab: Vocabulary,
  o: NextWordOptions = {},
): Promise<string[]> {
  const count = o.count ?? 3,
    maxTokens = o.maxTokens ?? 4;
  const context = ids.slice(-(o.context ?? 24));
  if (!context.length) return [];
  const [first] = await next([context]);
  const starts = topIds(
    first!,
    o.candidates ?? 6,
    (id) => !vocab.special.has(id) && beginsWord(vocab.pieces[id] ?? ''),
  );
  const words = starts.map((id) => [id]);
  let open = words.map((_, i) => i);
  for (let step = 1; step < maxTokens && open.length; step++) {
    const rows = await next(open.map((i) => [...context, ...words[i]!]));
    open = open.filter((i, k) => {
      const id = argmax(rows[k]!);
      if (vocab.special.has(id) || endsWord(vocab.pieces[id] ?? '')) return false;
      words[i]!.push(id);
      return true;
    });
  }
  const out: string[] = [];
  for (const w of words) {
    const word = vocab.decode(w).trim();
    if (HAS_WORD.test(word) && !out.includes(word)) out.push(word);
    if (out.length === count) break;
  }
  return out;
}

/** The pieces and special ids of a tokenizer.json (Unigram: a list of [piece, score]; BPE, WordPiece: piece → id). */
export function vocabularyOf(tokenizerJson: string, decode: (ids: readonly number[]) => string): Vocabulary {
  const t = JSON.parse(tokenizerJson) as {
    model?: { vocab?: [string, number][] | Record<string, number>; unk_id?: number | null };
    added_tokens?: { id: number; content: string; special?: boolean }[];
  };
  const pieces: string[] = [];
  const vocab = t.model?.vocab ?? [];
  if (Array.isArray(vocab)) vocab.forEach(([piece], id) => (pieces[id] = piece));
  else for (const [piece, id] of Object.entries(vocab)) pieces[id] = piece;
  const special = new Set<number>();
  for (const a of t.added_tokens ?? []) {
    pieces[a.id] = a.content;
    if (a.special) special.add(a.id);
  }
  if (typeof t.model?.unk_id === 'number') special.add(t.model.unk_id);
  // SentencePiece's control pieces (<pad>, <s>, </s>, <unk>), whether or not tokenizer.json lists them as added.
  pieces.forEach((p, id) => /^<\/?[a-z]+>$/.test(p) && special.add(id));
  return { pieces, special, decode };
}
