/**
 * Text in, text out: a request's parameters checked against the model and the host's limits, the prompt tokenized,
 * the decode loop run and its tokens turned into final chunks of text (text-stream.ts) — once, for the edge's
 * generate routes, the OpenAI-compatible routes and LocalModel on devices.
 */
import { seededRandom } from '../seeded-random.ts';
import { randomWords } from '../random.ts';
import { type DecoderStep, type FinishReason, decodeTokens } from './decode-loop.ts';
import type { Sampling } from './sampling.ts';
import { GenerationParamsError } from './errors.ts';
import type { LanguageModel } from './language-model.ts';
import { MAX_STOP_CHARS, MAX_STOP_SEQUENCES, TextStream } from './text-stream.ts';

/** A request's settings (OIP generate's `parameters`, OpenAI's completion fields); absent: the model's defaults. */
export interface GenerateParams {
  maxTokens?: number | undefined;
  temperature?: number | undefined;
  topK?: number | undefined;
  topP?: number | undefined;
  stop?: string | readonly string[] | undefined;
  seed?: number | undefined;
}

/** The host's bounds (Worker configuration, or the device's). */
export interface GenerationLimits {
  maxPromptTokens: number;
  maxNewTokens: number;
  /** Wall time of one generation. */
  timeoutMs: number;
}

/** New tokens when neither the request nor the model's generation_config.json says. */
export const DEFAULT_NEW_TOKENS = 64;

export interface GenerationChunk {
  text: string;
  /** Token ids generated since the last chunk. */
  tokens: number;
}

export interface GenerationResult {
  text: string;
  /** 'stop': an end-of-sequence token or a stop sequence; 'length': max tokens or the model's context. */
  finishReason: 'stop' | 'length' | 'aborted';
  promptTokens: number;
  completionTokens: number;
}

export interface GenerateHooks {
  signal?: AbortSignal | undefined;
  betweenSteps?: (() => Promise<void>) | undefined;
  onChunk?: ((chunk: GenerationChunk) => void | Promise<void>) | undefined;
}

function stopList(stop: GenerateParams['stop']): string[] {
  const list = stop === undefined ? [] : typeof stop === 'string' ? [stop] : [...stop];
  if (list.length > MAX_STOP_SEQUENCES)
    throw new GenerationParamsError(`stop: at most ${MAX_STOP_SEQUENCES} sequences, got ${list.length}`);
  for (const s of list)
    if (typeof s !== 'string' || s.length > MAX_STOP_CHARS)
      throw new GenerationParamsError(`stop: each sequence is a string of at most ${MAX_STOP_CHARS} characters`);
  return list;
}

export interface PreparedGeneration {
  promptIds: number[];
  maxNewTokens: number;
  sampling: Sampling;
  stop: string[];
  random: () => number;
  /** Stop (finish reason "length") once Date.now() passes this. */
  deadline: number;
}

/** The prompt's ids and the settings the loop runs with; what a request may not ask is a GenerationParamsError. */
export function prepareGeneration(
  model: LanguageModel,
  prompt: string,
  params: GenerateParams,
  limits: GenerationLimits,
): PreparedGeneration {
  const { config, tokenizer } = model;
  if (typeof prompt !== 'string' || prompt.length === 0) throw new GenerationParamsError('the prompt is empty');
  const promptIds = tokenizer.encode(prompt, { addSpecialTokens: true });
  if (!promptIds.length) throw new GenerationParamsError('the prompt has no tokens');
  if (promptIds.length > limits.maxPromptTokens)
    throw new GenerationParamsError(
      `the prompt is ${promptIds.length} tokens; this server takes at most ${limits.maxPromptTokens}`,
    );
  if (config.contextLength !== undefined && promptIds.length >= config.contextLength)
    throw new GenerationParamsError(
      `the prompt is ${promptIds.length} tokens; the model's context holds ${config.contextLength}, with room for at least one new token`,
    );
  const asked = params.maxTokens ?? Math.min(config.maxNewTokens ?? DEFAULT_NEW_TOKENS, limits.maxNewTokens);
  if (!Number.isInteger(asked) || asked < 1 || asked > limits.maxNewTokens)
    throw new GenerationParamsError(`max_tokens must be an integer from 1 to ${limits.maxNewTokens}, got ${asked}`);
  const temperature = params.temperature ?? config.temperature;
  if (!(Number.isFinite(temperature) && temperature >= 0 && temperature <= 100))
    throw new GenerationParamsError(`temperature must be from 0 to 100, got ${temperature}`);
  const topK = params.topK ?? config.topK;
  if (!(Number.isInteger(topK) && topK >= 0))
    throw new GenerationParamsError(`top_k must be an integer ≥ 0, got ${topK}`);
  const topP = params.topP ?? config.topP;
  if (!(topP > 0 && topP <= 1)) throw new GenerationParamsError(`top_p must be in (0, 1], got ${topP}`);
  if (params.seed !== undefined && !Number.isSafeInteger(params.seed))
    throw new GenerationParamsError(`seed must be an integer, got ${params.seed}`);
  // Past the model's context the position table runs out: the answer is cut there (finish reason "length").
  const room = config.contextLength === undefined ? asked : config.contextLength - promptIds.length;
  return {
    promptIds,
    maxNewTokens: Math.min(asked, room),
    sampling: { temperature, topK, topP },
    stop: stopList(params.stop),
    random: seededRandom(params.seed ?? randomWords(1)[0]!),
    deadline: Date.now() + limits.timeoutMs,
  };
}

/** Generates what `run` (prepareGeneration) asks; chunks reach `onChunk` as they become final. */
export async function generateText(
  model: LanguageModel,
  step: DecoderStep,
  run: PreparedGeneration,
  hooks: GenerateHooks = {},
): Promise<GenerationResult> {
  const stream = new TextStream(model.tokenizer, run.promptIds, run.stop);
  const tokens = decodeTokens(step, model.layout, run.promptIds, {
    maxNewTokens: run.maxNewTokens,
    sampling: run.sampling,
    random: run.random,
    eosTokenIds: model.config.eosTokenIds,
    signal: hooks.signal,
    betweenSteps: hooks.betweenSteps,
    deadline: run.deadline,
  });
  let completionTokens = 0,
    pending = 0;
  let finish: FinishReason | 'stop';
  for (;;) {
    const next = await tokens.next();
    if (next.done) {
      finish = next.value;
      break;
    }
    completionTokens++;
    pending++;
    const { chunk, stopped } = stream.push(next.value);
    if (chunk) {
      await hooks.onChunk?.({ text: chunk, tokens: pending });
      pending = 0;
    }
    if (stopped) {
      await tokens.return('eos');
      finish = 'stop';
      break;
    }
  }
  if (finish !== 'stop' && finish !== 'aborted') {
    const rest = stream.flush();
    if (rest || pending) await hooks.onChunk?.({ text: rest, tokens: pending });
  }
  return {
    text: stream.text,
    finishReason: finish === 'eos' ? 'stop' : finish,
    promptTokens: run.promptIds.length,
    completionTokens,
  };
}
