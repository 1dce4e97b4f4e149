/**
 * One generation at the edge: the version resolved and loaded, the request checked against the model and the
 * Worker's limits (before any byte of an answer is sent, so a refusal is a 4xx), a slot of this isolate taken, and
 * the decode loop run on the shared session — handing the event loop a turn between tokens, so other requests and
 * streams of the isolate interleave step by step.
 */
import { fail } from '../middleware/errors.ts';
import { services } from '../services.ts';
import type { VersionRecord } from '../registry/model-record.ts';
import {
  type GenerateHooks,
  type GenerateParams,
  type GenerationResult,
  generateText,
  prepareGeneration,
} from '../../federated/generation/generate.ts';
import { takeGenerationSlot } from './generation-slots.ts';
import { generatedTokens, generations } from '../metrics/isolate-metrics.ts';

/** Tokens a generation computes between two turns of the isolate's event loop. */
export const TOKENS_PER_TURN = 8;

/**
 * Every TOKENS_PER_TURN tokens, a turn of workerd's event loop: an ORT run never yields, so without it one generation
 * would hold every other request and stream of the isolate until it ended; a turn every token cost 1.2 ms a token
 * (a workerd timer; bench:generate: 390 → 726 tokens/s without it), so a turn comes every few tokens — a few ms of
 * waiting for the others. A timer, not a MessageChannel message: workerd delivers those without returning to its I/O
 * loop, so a stream's bytes would not leave until the generation ended (measured).
 */
function turns(): () => Promise<void> {
  let step = 0;
  return () =>
    ++step % TOKENS_PER_TURN === 0 ? new Promise<void>((resolve) => setTimeout(resolve, 0)) : Promise.resolve();
}

export interface EdgeGeneration {
  record: VersionRecord;
  /** Runs the generation (once); the slot is given back when it ends, however it ends. */
  run(hooks?: GenerateHooks): Promise<GenerationResult>;
  /** Gives the slot back without running (a stream that never started). */
  cancel(): void;
}

export async function startGeneration(
  env: Env,
  name: string,
  ref: string | undefined,
  prompt: string,
  params: GenerateParams,
): Promise<EdgeGeneration> {
  const { registry, config } = services(env);
  const record = await registry.resolve(name, ref);
  const { model, step } = await registry.languageModel(record);
  const prepared = prepareGeneration(model, prompt, params, {
    maxPromptTokens: config.maxPromptTokens,
    maxNewTokens: config.maxNewTokens,
    timeoutMs: config.generateTimeoutMs,
  });
  const release = takeGenerationSlot(config.maxGenerations);
  if (!release)
    fail(429, `${config.maxGenerations} generations are already running here; retry shortly`, { 'Retry-After': '1' });
  return {
    record,
    run: async (hooks = {}) => {
      // A client that goes away ends the request's I/O in workerd: timers and runs the loop still awaits may never
      // settle. The slot is given back from the abort itself, not from the loop's end.
      let ended = false;
      let counted = 0;
      const end = (finish: string) => {
        if (ended) return;
        ended = true;
        generations.inc({ model: record.model, finish_reason: finish });
        release();
      };
      const aborted = () => end('aborted');
      hooks.signal?.addEventListener('abort', aborted, { once: true });
      try {
        const result = await generateText(model, step, prepared, {
          betweenSteps: turns(),
          ...hooks,
          onChunk: async (chunk) => {
            counted += chunk.tokens;
            generatedTokens.inc({ model: record.model }, chunk.tokens);
            await hooks.onChunk?.(chunk);
          },
        });
        generatedTokens.inc({ model: record.model }, Math.max(0, result.completionTokens - counted));
        end(result.finishReason);
        return result;
      } catch (e) {
        end('error');
        throw e;
      } finally {
        hooks.signal?.removeEventListener('abort', aborted);
      }
    },
    cancel: release,
  };
}
