/**
 * Tokenizers as the ecosystem ships them: a Hugging Face `tokenizer.json` (BPE, WordPiece or Unigram with its
 * normalizer, pre-tokenizer, post-processor and decoder), loaded from memory by `@huggingface/tokenizers` — no fs,
 * no eval, so the same code runs in workerd, browsers and Node. One module for the edge, the device and the Trainer.
 */
import { Tokenizer } from '@huggingface/tokenizers';

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/** Most bytes of tokenizer.json text accepted (a 256k-piece vocabulary with merges is ~20 MB). */
export const MAX_TOKENIZER_JSON_BYTES = 32 * 1024 * 1024;

const MODEL_TYPES = new Set(['BPE', 'WordPiece', 'Unigram']);

export interface TextTokenizer {
  /** One more than the largest token id, added tokens included: what the model's logits must cover. */
  readonly vocabSize: number;
  /** Token ids of `text`; special tokens (a BOS, a CLS) are added only when `addSpecialTokens`. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** The text of `ids`; special tokens are left out unless `keepSpecialTokens`. */
  decode(ids: readonly number[], opts?: { keepSpecialTokens?: boolean }): string;
  /** The id of a token's string, if it is in the vocabulary. */
  tokenId(token: string): number | undefined;
}

function vocabularySize(tokenizer: Tokenizer): number {
  let max = -1;
  for (const id of tokenizer.get_vocab(true).values()) if (id > max) max = id;
  return max + 1;
}

/**
 * Parses `json` (tokenizer.json's text) and builds its tokenizer; `config` is tokenizer_config.json's object when
 * there is one. Anything that is not a tokenizer.json a Hugging Face tokenizer can load is a TokenizerError.
 */
export function loadTokenizer(json: string, config: Record<string, unknown> = {}): TextTokenizer {
  if (json.length > MAX_TOKENIZER_JSON_BYTES)
    throw new TokenizerError(`tokenizer.json is larger than ${MAX_TOKENIZER_JSON_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new TokenizerError(`tokenizer.json is not JSON: ${(e as Error).message}`);
  }
  const model = (parsed as { model?: { type?: unknown; vocab?: unknown } } | null)?.model;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof model !== 'object' || !model)
    throw new TokenizerError('tokenizer.json has no "model" object');
  if (typeof model.type !== 'string' || !MODEL_TYPES.has(model.type))
    throw new TokenizerError(
      `tokenizer.json's model type ${JSON.stringify(model.type)} is not one of ${[...MODEL_TYPES].join(', ')}`,
    );
  if (typeof model.vocab !== 'object' || model.vocab === null)
    throw new TokenizerError("tokenizer.json's model has no vocabulary");
  let tokenizer: Tokenizer;
  try {
    // Optional in the format (Hugging Face's own loader defaults them); the JS library wants each key present.
    const complete = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [],
      ...parsed,
    };
    tokenizer = new Tokenizer(complete, config);
    // A tokenizer that cannot encode and decode a sentence is refused now, not on a user's first request.
    tokenizer.decode(tokenizer.encode('Fedge tokenizer check: 0123, déjà vu!').ids);
  } catch (e) {
    throw new TokenizerError(`tokenizer.json cannot be loaded: ${(e as Error).message ?? String(e)}`);
  }
  const vocabSize = vocabularySize(tokenizer);
  if (vocabSize <= 0) throw new TokenizerError('tokenizer.json has an empty vocabulary');
  return {
    vocabSize,
    encode: (text, opts = {}) => tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids,
    decode: (ids, opts = {}) =>
      tokenizer.decode([...ids], { skip_special_tokens: !opts.keepSpecialTokens, clean_up_tokenization_spaces: false }),
    tokenId: (token) => tokenizer.token_to_id(token),
  };
}
