/** Why a model cannot generate (not a decoder, no or a broken tokenizer), and why a generation request is refused. */
export class LanguageModelError extends Error {
  override name = 'LanguageModelError';
}

export class GenerationParamsError extends Error {
  override name = 'GenerationParamsError';
}
