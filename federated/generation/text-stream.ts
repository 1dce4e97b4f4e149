/**
 * Generated tokens → text, chunk by chunk, as a stream can show it: a chunk is only text that cannot change any more.
 * Each step decodes the generated ids after a few prompt ids and keeps what follows their text, so a word's leading
 * space survives tokenizers whose decoder strips it at the start of a text (SentencePiece's ▁, Metaspace + Strip).
 * Held back: an incomplete character (byte-fallback and byte-level tokens end mid-UTF-8 as U+FFFD) and any tail
 * that may be the start of a stop sequence. A stop sequence ends the text before it (OpenAI's and Triton's `stop`).
 */
import type { TextTokenizer } from '../text/tokenizer.ts';

/** Most stop sequences a request may give (OpenAI's limit), and the longest, in characters. */
export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_CHARS = 100;

/** Prompt ids decoded before the generated ones, to give the first generated token its context. */
const CONTEXT_IDS = 4;

export class TextStream {
  readonly #tokenizer: TextTokenizer;
  readonly #stop: string[];
  readonly #context: number[];
  readonly #contextText: string;
  readonly #ids: number[] = [];
  #emitted = '';
  #text = '';

  constructor(tokenizer: TextTokenizer, promptIds: readonly number[], stop: readonly string[] = []) {
    this.#tokenizer = tokenizer;
    this.#stop = stop.filter((s) => s.length > 0);
    this.#context = promptIds.slice(-CONTEXT_IDS);
    this.#contextText = tokenizer.decode(this.#context);
  }

  /** All the text emitted so far. */
  get text(): string {
    return this.#emitted;
  }

  /** Adds a generated token: the text it makes final (maybe ''), and whether a stop sequence was reached. */
  push(id: number): { chunk: string; stopped: boolean } {
    this.#ids.push(id);
    const full = this.#tokenizer.decode([...this.#context, ...this.#ids]);
    this.#text = full.startsWith(this.#contextText)
      ? full.slice(this.#contextText.length)
      : this.#tokenizer.decode(this.#ids);
    const searchFrom = Math.max(0, this.#emitted.length - MAX_STOP_CHARS);
    let end = -1;
    for (const s of this.#stop) {
      const at = this.#text.indexOf(s, searchFrom);
      if (at >= 0 && (end < 0 || at < end)) end = at;
    }
    if (end >= 0) return { chunk: this.#take(end), stopped: true };
    let safe = this.#text.length;
    while (safe > 0 && this.#text[safe - 1] === '\uFFFD') safe--;
    for (const s of this.#stop)
      for (let k = Math.min(s.length - 1, safe); k > 0; k--)
        if (this.#text.endsWith(s.slice(0, k)) && this.#text.length - k < safe) {
          safe = this.#text.length - k;
          break;
        }
    return { chunk: this.#take(safe), stopped: false };
  }

  /** At the end (length, end of sequence): whatever was held back. */
  flush(): string {
    return this.#take(this.#text.length);
  }

  #take(end: number): string {
    if (end <= this.#emitted.length || !this.#text.startsWith(this.#emitted)) return '';
    const chunk = this.#text.slice(this.#emitted.length, end);
    this.#emitted = this.#text.slice(0, end);
    return chunk;
  }
}
