/**
 * A generation request's parameters as the HTTP API and the SDK name them (OIP generate's `parameters`, snake_case as
 * Triton and OpenAI write them) → the core's GenerateParams. One mapping for the edge's routes, EdgeClient and
 * LocalModel, so a device and the edge read the same request the same way.
 */
import type { GenerateParams } from './generate.ts';

export interface GenerateParameters {
  max_tokens?: number | undefined;
  /** 0: greedy. */
  temperature?: number | undefined;
  top_k?: number | undefined;
  top_p?: number | undefined;
  stop?: string | string[] | undefined;
  seed?: number | undefined;
}

export const fromParameters = (p: GenerateParameters = {}): GenerateParams => ({
  maxTokens: p.max_tokens,
  temperature: p.temperature,
  topK: p.top_k,
  topP: p.top_p,
  stop: p.stop,
  seed: p.seed,
});
