/**
 * What makes a served version a language model: a decoder graph (decoder-layout.ts) whose file carries its
 * tokenizer and generation settings in ONNX `metadata_props` — `tokenizer.json` and `generation_config.json`, the
 * Hugging Face files' text, as `fedge pack` writes them. Checked together: the tokenizer's ids and the special ids
 * must be rows of the logits.
 */
import { loadTokenizer, type TextTokenizer, TokenizerError } from '../text/tokenizer.ts';
import { type DecoderLayout, type TensorSignature, decoderLayout } from './decoder-layout.ts';
import { LanguageModelError } from './errors.ts';
import { type GenerationConfig, parseGenerationConfig } from './generation-config.ts';

/** The metadata_props keys a language model's file carries. */
export const TOKENIZER_PROP = 'tokenizer.json';
export const GENERATION_CONFIG_PROP = 'generation_config.json';
export const TOKENIZER_CONFIG_PROP = 'tokenizer_config.json';

export interface LanguageModel {
  layout: DecoderLayout;
  tokenizer: TextTokenizer;
  config: GenerationConfig;
}

/** Does this file claim to be a language model (it carries a tokenizer)? Such a file must then be a valid one. */
export function carriesTokenizer(props: Record<string, string>): boolean {
  return TOKENIZER_PROP in props;
}

function specContextLength(props: Record<string, string>): number | undefined {
  try {
    const n = (JSON.parse(props['fedge.spec'] ?? '{}') as { contextLength?: unknown }).contextLength;
    return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The language model a file and its graph make; anything missing or mismatched is a LanguageModelError. */
export function readLanguageModel(
  props: Record<string, string>,
  inputs: TensorSignature[],
  outputs: TensorSignature[],
): LanguageModel {
  const layout = decoderLayout(inputs, outputs);
  const text = props[TOKENIZER_PROP];
  if (text === undefined)
    throw new LanguageModelError(
      `the decoder carries no tokenizer: pack its tokenizer.json into the file (fedge pack <model.onnx> --tokenizer tokenizer.json <out.onnx>)`,
    );
  let tokenizer: TextTokenizer;
  try {
    let tokenizerConfig: Record<string, unknown> = {};
    if (props[TOKENIZER_CONFIG_PROP]) tokenizerConfig = JSON.parse(props[TOKENIZER_CONFIG_PROP]);
    tokenizer = loadTokenizer(text, tokenizerConfig);
  } catch (e) {
    if (e instanceof TokenizerError || e instanceof SyntaxError) throw new LanguageModelError(e.message);
    throw e;
  }
  if (layout.vocabSize !== undefined && tokenizer.vocabSize > layout.vocabSize)
    throw new LanguageModelError(
      `the tokenizer has ${tokenizer.vocabSize} token ids but the model's logits have ${layout.vocabSize}: not this model's tokenizer`,
    );
  const vocab = layout.vocabSize ?? tokenizer.vocabSize;
  const config = parseGenerationConfig(props[GENERATION_CONFIG_PROP], vocab, specContextLength(props));
  return { layout, tokenizer, config };
}
