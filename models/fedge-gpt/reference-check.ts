/**
 * Checks an exported decoder against the PyTorch model's logits (test/fixtures/lm/reference-logits.json, written by
 * pretrain.py): for each prompt, the prefill's last row and three cached greedy steps, on onnxruntime-node with the
 * KV cache fed back, and the same rows from the tfjs forward over the whole sequence. Rows are compared on their
 * first 64 entries, their argmax and their max (what the fixture keeps).
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import type { DecoderSpec } from '../../federated/model/decoder-spec.ts';
import { decoderLogits } from '../../federated/model/decoder-tfjs.ts';
import type { NamedWeight } from '../../federated/model/model-spec.ts';

export interface RowSummary {
  first64: number[];
  argmax: number;
  max: number;
}

/** reference-logits.json as pretrain.py writes it. */
export interface ReferenceLogits {
  prompts: {
    text: string;
    ids: number[];
    prefill_last: RowSummary;
    steps: (RowSummary & { input_id: number })[];
  }[];
}

/**
 * Session options that keep an int8 weight-only graph's compute fp32 on onnxruntime-node: it rewrites DequantizeLinear
 * + MatMul into com.microsoft MatMulNBits, which at its default accuracy level (4) also quantizes the activations
 * (logits move by ~0.02); level 1 computes as onnxruntime-web does.
 */
export const FP32_COMPUTE = {
  extra: { session: { qdq_matmulnbits_accuracy_level: '1' } },
} as ort.InferenceSession.SessionOptions;

export interface RowComparison {
  /** largest |ours - torch| over the first 64 logits and the max */
  maxAbsDiff: number;
  argmaxAgrees: boolean;
}

export interface CheckResult {
  rows: number;
  maxAbsDiff: number;
  argmaxAgreement: number;
}

function compare(row: Float32Array, ref: RowSummary): RowComparison {
  let argmax = 0;
  for (let j = 1; j < row.length; j++) if (row[j]! > row[argmax]!) argmax = j;
  let diff = Math.abs(row[argmax]! - ref.max);
  ref.first64.forEach((v, j) => (diff = Math.max(diff, Math.abs(row[j]! - v))));
  return { maxAbsDiff: diff, argmaxAgrees: argmax === ref.argmax };
}

function summarize(comparisons: RowComparison[]): CheckResult {
  return {
    rows: comparisons.length,
    maxAbsDiff: Math.max(...comparisons.map((c) => c.maxAbsDiff)),
    argmaxAgreement: comparisons.filter((c) => c.argmaxAgrees).length / comparisons.length,
  };
}

/** The ONNX decoder with its KV cache, as a serving loop runs it: prefill from past length 0, then one token a step. */
export async function checkOnnx(
  spec: DecoderSpec,
  onnx: Uint8Array,
  reference: ReferenceLogits,
  options: ort.InferenceSession.SessionOptions = {},
): Promise<CheckResult> {
  const session = await ort.InferenceSession.create(onnx, options);
  const hd = spec.embedDim / spec.heads;
  const V = spec.vocabSize;
  const int64 = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, values.length]);
  const comparisons: RowComparison[] = [];
  try {
    for (const prompt of reference.prompts) {
      let past: Record<string, ort.Tensor> = {};
      for (let i = 0; i < spec.layers; i++)
        for (const part of ['key', 'value'])
          past[`past_key_values.${i}.${part}`] = new ort.Tensor('float32', new Float32Array(0), [1, spec.heads, 0, hd]);
      let length = 0;
      const run = async (ids: number[]) => {
        const out = await session.run({
          input_ids: int64(ids),
          attention_mask: int64(Array(length + ids.length).fill(1)),
          position_ids: int64(ids.map((_, k) => length + k)),
          ...past,
        });
        length += ids.length;
        past = {};
        for (let i = 0; i < spec.layers; i++)
          for (const part of ['key', 'value']) past[`past_key_values.${i}.${part}`] = out[`present.${i}.${part}`]!;
        const logits = out.logits!.data as Float32Array;
        return logits.subarray(logits.length - V);
      };
      comparisons.push(compare(await run(prompt.ids), prompt.prefill_last));
      for (const step of prompt.steps) comparisons.push(compare(await run([step.input_id]), step));
    }
  } finally {
    await session.release();
  }
  return summarize(comparisons);
}

/** The tfjs forward (training's) over each prompt and its greedy continuation at once. */
export function checkTfjs(spec: DecoderSpec, weights: NamedWeight[], reference: ReferenceLogits): CheckResult {
  const V = spec.vocabSize;
  const comparisons: RowComparison[] = [];
  for (const prompt of reference.prompts) {
    const ids = [...prompt.ids, ...prompt.steps.map((s) => s.input_id)];
    const logits = decoderLogits(tf, spec, weights, [ids]);
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    const row = (pos: number) => values.subarray(pos * V, (pos + 1) * V);
    const last = prompt.ids.length - 1;
    comparisons.push(compare(row(last), prompt.prefill_last));
    prompt.steps.forEach((step, j) => comparisons.push(compare(row(last + 1 + j), step)));
  }
  return summarize(comparisons);
}
