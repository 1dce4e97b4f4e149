/**
 * The decode loop, once for the edge and the device: a prefill over the prompt (past length 0), then one token a
 * step with the key/value cache fed back (`present.*` → `past_key_values.*`), so a step costs one token's
 * attention over the cache, not a recompute of the whole text. Free of any ORT build: the caller's `step` runs the
 * graph (onnxruntime-web in a Worker or a browser, onnxruntime-node in tests and benches).
 * Between steps `betweenSteps` hands the event loop a turn — an ORT run never yields, and an isolate's other
 * requests and streams wait for it — and an aborted `signal` (the client went away) ends the loop.
 */
import type { DecoderLayout } from './decoder-layout.ts';
import { type Sampling, pickToken } from './sampling.ts';

export interface StepTensor {
  type: 'int64' | 'float32' | 'bool';
  data: BigInt64Array | Float32Array | Uint8Array;
  dims: number[];
}
export interface StepOutput {
  data: Float32Array;
  dims: readonly number[];
}
/** Runs the graph once on `feeds`, returning `logits` and every `present.*`. */
export type DecoderStep = (feeds: Record<string, StepTensor>) => Promise<Record<string, StepOutput>>;

export type FinishReason = 'length' | 'eos' | 'aborted';

export interface DecodeOptions {
  maxNewTokens: number;
  sampling: Sampling;
  random: () => number;
  eosTokenIds: readonly number[];
  signal?: AbortSignal | undefined;
  betweenSteps?: (() => Promise<void>) | undefined;
  /** Date.now() past which the loop stops as if at max tokens. */
  deadline?: number | undefined;
}

const int64 = (values: number[], dims: number[]): StepTensor => ({
  type: 'int64',
  data: BigInt64Array.from(values, (v) => BigInt(v)),
  dims,
});

/**
 * Yields each generated token id; returns why it stopped. An end-of-sequence token ends the loop and is not
 * yielded. Leaving the `for await` early (a stop sequence) ends it too.
 */
export async function* decodeTokens(
  step: DecoderStep,
  layout: DecoderLayout,
  promptIds: readonly number[],
  opts: DecodeOptions,
): AsyncGenerator<number, FinishReason> {
  if (!promptIds.length) throw new RangeError('decodeTokens: the prompt has no tokens');
  const { layers, heads, headDim } = layout;
  let past: Record<string, StepTensor> = {};
  for (let i = 0; i < layers; i++)
    for (const part of ['key', 'value'])
      past[`past_key_values.${i}.${part}`] = {
        type: 'float32',
        data: new Float32Array(0),
        dims: [1, heads, 0, headDim],
      };
  let pastLength = 0;
  let next = [...promptIds];
  const eos = new Set(opts.eosTokenIds);
  for (let generated = 0; generated < opts.maxNewTokens; generated++) {
    if (opts.signal?.aborted) return 'aborted';
    if (opts.deadline !== undefined && Date.now() > opts.deadline) return 'length';
    const feeds: Record<string, StepTensor> = { input_ids: int64(next, [1, next.length]), ...past };
    const total = pastLength + next.length;
    if (layout.attentionMask) feeds.attention_mask = int64(new Array(total).fill(1), [1, total]);
    if (layout.positionIds)
      feeds.position_ids = int64(
        next.map((_, k) => pastLength + k),
        [1, next.length],
      );
    if (layout.useCacheBranch)
      feeds.use_cache_branch = { type: 'bool', data: Uint8Array.of(pastLength > 0 ? 1 : 0), dims: [1] };
    const out = await step(feeds);
    const logits = out.logits!;
    const vocab = logits.dims[2]!;
    const row = (logits.dims[1]! - 1) * vocab;
    const token = pickToken(logits.data, opts.sampling, opts.random, row, row + vocab);
    past = {};
    for (let i = 0; i < layers; i++)
      for (const part of ['key', 'value']) {
        const present = out[`present.${i}.${part}`]!;
        past[`past_key_values.${i}.${part}`] = { type: 'float32', data: present.data, dims: [...present.dims] };
      }
    pastLength = total;
    if (eos.has(token)) return 'eos';
    yield token;
    next = [token];
    if (opts.betweenSteps) await opts.betweenSteps();
  }
  return 'length';
}
