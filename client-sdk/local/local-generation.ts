/**
 * Text generation for LocalModel: on the device, the shared core (federated/generation) on the session LocalModel
 * loaded — the edge's tokenizer, decode loop and sampling, so greedy text is the edge's token for token — and, for a
 * LocalModel that runs on the edge, the edge's stream read into the same result.
 */
import type { EdgeClient } from '../edge/edge-client.ts';
import { chunkStream } from './chunk-stream.ts';
import { LocalModelError } from './local-model-error.ts';
import type { OrtModule } from './ort-loader.ts';
import type { LanguageModel } from '../../federated/generation/language-model.ts';
import { ortDecoderStep } from '../../federated/generation/ort-step.ts';
import { nextTurn } from '../../federated/generation/next-turn.ts';
import { type GenerationResult, generateText, prepareGeneration } from '../../federated/generation/generate.ts';
import { type GenerateParameters, fromParameters } from '../../federated/generation/oip-parameters.ts';

/** A device's bounds on one generation: the model's own context bounds it first. */
export const DEVICE_GENERATION_LIMITS = { maxPromptTokens: 8192, maxNewTokens: 4096, timeoutMs: 10 * 60_000 };

export interface LocalGenerateResult extends GenerationResult {
  ranOn: 'webgpu' | 'wasm' | 'edge';
  ms: number;
}

/** What a device generation runs on: LocalModel's session (or none, once released), in LocalModel's run queue. */
export interface DeviceSession {
  ort: OrtModule;
  session: () => { run(feeds: never): Promise<never> } | undefined;
  ranOn: 'webgpu' | 'wasm';
  /** Runs `job` after the model's earlier runs (LocalModel runs one thing at a time). */
  queue<T>(job: () => Promise<T>): Promise<T>;
}

/** Generates on the device; a request it cannot take is a LocalModelError, thrown before anything runs. */
export function generateOnDevice(
  device: DeviceSession,
  language: LanguageModel,
  prompt: string,
  parameters: GenerateParameters,
  outer: AbortSignal | undefined,
): AsyncGenerator<string, LocalGenerateResult> {
  const started = performance.now();
  let prepared: ReturnType<typeof prepareGeneration>;
  try {
    prepared = prepareGeneration(language, prompt, fromParameters(parameters), DEVICE_GENERATION_LIMITS);
  } catch (e) {
    throw new LocalModelError((e as Error).message);
  }
  return chunkStream(
    (onChunk, signal) =>
      device.queue(async () => {
        const session = device.session();
        if (!session) throw new LocalModelError('this LocalModel was released');
        const step = ortDecoderStep(device.ort.Tensor as never, (feeds) => session.run(feeds as never));
        const result = await generateText(language, step, prepared, {
          signal,
          // A turn of the event loop between tokens: the page paints the text so far.
          betweenSteps: nextTurn,
          onChunk: (chunk) => {
            if (chunk.text) onChunk(chunk.text);
          },
        });
        return { ...result, ranOn: device.ranOn, ms: performance.now() - started };
      }),
    outer,
  );
}

/** The edge's stream (EdgeClient.generateStream) as a device generation's pieces and result. */
export async function* generateOnEdge(
  client: EdgeClient,
  model: string,
  version: string,
  prompt: string,
  parameters: GenerateParameters,
  signal: AbortSignal | undefined,
): AsyncGenerator<string, LocalGenerateResult> {
  const started = performance.now();
  let text = '';
  const stream = client.generateStream(model, prompt, parameters, { version, signal });
  for (;;) {
    const next = await stream.next();
    if (next.done) {
      const d = next.value;
      return {
        text,
        finishReason: d?.finish_reason ?? 'stop',
        promptTokens: d?.prompt_tokens ?? 0,
        completionTokens: d?.completion_tokens ?? 0,
        ranOn: 'edge',
        ms: performance.now() - started,
      };
    }
    text += next.value;
    yield next.value;
  }
}
