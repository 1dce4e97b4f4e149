/**
 * A language model's generation_config.json (Hugging Face's file, carried in the ONNX metadata_props): its special
 * token ids and default decoding settings. Read the way transformers does: `eos_token_id` may be one id or a list,
 * `do_sample: false` (the default) makes greedy decoding the default.
 */
import { LanguageModelError } from './errors.ts';

export interface GenerationConfig {
  bosTokenId: number | undefined;
  eosTokenIds: number[];
  padTokenId: number | undefined;
  /** Positions the model was trained for (its position table), when the file or the spec says. */
  contextLength: number | undefined;
  /** Defaults for what a request leaves out. */
  temperature: number;
  topK: number;
  topP: number;
  maxNewTokens: number | undefined;
}

const id = (v: unknown, what: string, vocabSize: number): number | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocabSize)
    throw new LanguageModelError(
      `generation_config.json: ${what} ${JSON.stringify(v)} is not a token id below ${vocabSize}`,
    );
  return v;
};

const num = (v: unknown, what: string, ok: (n: number) => boolean): number | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
    throw new LanguageModelError(`generation_config.json: ${what} ${JSON.stringify(v)} is out of range`);
  return v;
};

/** Parses generation_config.json's text (absent: no special ids, greedy); a file that does not fit is a LanguageModelError. */
export function parseGenerationConfig(
  text: string | undefined,
  vocabSize: number,
  specContextLength?: number,
): GenerationConfig {
  let c: Record<string, unknown> = {};
  if (text !== undefined) {
    try {
      c = JSON.parse(text);
    } catch (e) {
      throw new LanguageModelError(`generation_config.json is not JSON: ${(e as Error).message}`);
    }
    if (typeof c !== 'object' || c === null || Array.isArray(c))
      throw new LanguageModelError('generation_config.json is not a JSON object');
  }
  const eos = Array.isArray(c.eos_token_id) ? c.eos_token_id : c.eos_token_id === undefined ? [] : [c.eos_token_id];
  const sample = c.do_sample === true;
  const positions = (v: unknown, what: string) => num(v, what, (n) => Number.isInteger(n) && n > 0);
  return {
    bosTokenId: id(c.bos_token_id, 'bos_token_id', vocabSize),
    eosTokenIds: eos.map((e) => id(e, 'eos_token_id', vocabSize)!),
    padTokenId: id(c.pad_token_id, 'pad_token_id', vocabSize),
    contextLength:
      specContextLength ??
      positions(c.max_position_embeddings, 'max_position_embeddings') ??
      positions(c.n_positions, 'n_positions'),
    temperature: sample ? (num(c.temperature, 'temperature', (n) => n >= 0) ?? 1) : 0,
    topK: num(c.top_k, 'top_k', (n) => Number.isInteger(n) && n >= 0) ?? 0,
    topP: num(c.top_p, 'top_p', (n) => n > 0 && n <= 1) ?? 1,
    maxNewTokens: positions(c.max_new_tokens, 'max_new_tokens'),
  };
}
