/**
 * One decoder spec + one set of weights → the tfjs forward pass (training) and exportDecoderOnnx (serving) compute the
 * same logits within 1e-4 on onnxruntime-node: a prefill with past length 0, cached one-token steps fed the previous
 * step's present.* as past_key_values.*, and a left-padded batch. Also: both embedding lookups of the tfjs pass agree,
 * and the one-hot lookup has gradients for every parameter (what training on the WASM backend needs).
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportDecoderOnnx } from '../../../federated/model/decoder-export.ts';
import { decoderParameterShapes } from '../../../federated/model/decoder-spec.ts';
import { decoderForward, decoderLogits } from '../../../federated/model/decoder-tfjs.ts';
import { tokenBatch } from '../../../federated/model/decoder-batch.ts';
import { decodeModel } from '../../../federated/model/onnx-graph.ts';
import {
  maxAbsDiff,
  referenceLogits,
  runStep,
  tinyDecoder as spec,
  tinyDecoderWeights,
} from '../../fixtures/tiny-decoder.ts';

const V = spec.vocabSize;
const weights = tinyDecoderWeights();
const PROMPT = [1, 17, 42, 8, 96, 3, 55];
const NEXT = [23, 0, 71];
const diffs: Record<string, number> = {};
let session: ort.InferenceSession;

/** Logits of one position, from a [b, s, V] row-major array. */
const at = (logits: ArrayLike<number>, s: number, row: number, pos: number) =>
  Array.from({ length: V }, (_, j) => logits[(row * s + pos) * V + j]!);

function tfjsLogits(ids: number[][], mask?: number[][]): Float32Array {
  const t = decoderLogits(tf, spec, weights, ids, mask);
  const out = t.dataSync() as Float32Array;
  t.dispose();
  return out;
}

function record(label: string, diff: number): number {
  diffs[label] = Math.max(diffs[label] ?? 0, diff);
  return diff;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  session = await ort.InferenceSession.create(exportDecoderOnnx(spec, weights));
});
afterAll(async () => {
  await session?.release();
  console.log(`decoder parity, max |ONNX - tfjs|: ${JSON.stringify(diffs)}`);
});

describe('exportDecoderOnnx', () => {
  it("declares Optimum's with-past inputs and outputs, with symbolic dims, and the spec in metadata", () => {
    expect(session.inputNames).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
      'past_key_values.0.key',
      'past_key_values.0.value',
      'past_key_values.1.key',
      'past_key_values.1.value',
    ]);
    expect(session.outputNames).toEqual([
      'logits',
      'present.0.key',
      'present.0.value',
      'present.1.key',
      'present.1.value',
    ]);
    const model = decodeModel(exportDecoderOnnx(spec, weights, { metadata: { extra: 'x' } }));
    const dims = (name: string) =>
      [...(model.graph!.input ?? []), ...(model.graph!.output ?? [])]
        .find((v) => v.name === name)!
        .type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims('input_ids')).toEqual(['batch_size', 'sequence_length']);
    expect(dims('attention_mask')).toEqual(['batch_size', 'past_sequence_length + sequence_length']);
    expect(dims('past_key_values.1.value')).toEqual(['batch_size', 4, 'past_sequence_length', 8]);
    expect(dims('present.0.key')).toEqual(['batch_size', 4, 'past_sequence_length + sequence_length', 8]);
    expect(dims('logits')).toEqual(['batch_size', 'sequence_length', V]);
    expect(model.opsetImport?.[0]?.version).toBe(17);
    const meta = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key, p.value]));
    expect(JSON.parse(meta['fedge.spec']!)).toEqual(spec);
    expect(meta.extra).toBe('x');
  });

  it('a prefill with past length 0 gives the tfjs logits at every position (1e-4)', async () => {
    const expected = tfjsLogits([PROMPT]);
    const n = PROMPT.length;
    const { logits, present } = await runStep(
      session,
      spec,
      [PROMPT],
      [PROMPT.map(() => 1)],
      [PROMPT.map((_, i) => i)],
    );
    expect(record('prefill', maxAbsDiff(logits, expected))).toBeLessThan(1e-4);
    expect(present.map((t) => t.dims)).toEqual(Array(4).fill([1, 4, n, 8]));
  });

  it("cached one-token steps fed the previous step's present.* give the full sequence's logits at their position", async () => {
    const all = [...PROMPT, ...NEXT];
    const expected = tfjsLogits([all]);
    let { present } = await runStep(session, spec, [PROMPT], [PROMPT.map(() => 1)], [PROMPT.map((_, i) => i)]);
    for (const [k, token] of NEXT.entries()) {
      const pos = PROMPT.length + k;
      const step = await runStep(session, spec, [[token]], [Array(pos + 1).fill(1)], [[pos]], present);
      expect(record('cached step', maxAbsDiff(step.logits, at(expected, all.length, 0, pos)))).toBeLessThan(1e-4);
      expect(step.present[0]!.dims).toEqual([1, 4, pos + 1, 8]);
      present = step.present;
    }
  });

  it('a left-padded batch gives each real token the logits of its unpadded sequence, prefill and cached', async () => {
    const short = PROMPT.slice(0, 4);
    const pad = PROMPT.length - short.length;
    const ids = [PROMPT, [...Array(pad).fill(spec.padTokenId), ...short]];
    const mask = [PROMPT.map(() => 1), [...Array(pad).fill(0), ...short.map(() => 1)]];
    const positions = [PROMPT.map((_, i) => i), [...Array(pad).fill(1), ...short.map((_, i) => i)]];
    const { logits, present } = await runStep(session, spec, ids, mask, positions);
    const s = PROMPT.length;
    const full = tfjsLogits([PROMPT]);
    const alone = tfjsLogits([[...short, NEXT[0]!]]);
    for (let p = 0; p < s; p++)
      expect(record('padded batch', maxAbsDiff(at(logits, s, 0, p), at(full, s, 0, p)))).toBeLessThan(1e-4);
    for (let p = 0; p < short.length; p++)
      expect(
        record('padded batch', maxAbsDiff(at(logits, s, 1, pad + p), at(alone, short.length + 1, 0, p))),
      ).toBeLessThan(1e-4);
    // No NaN leaks from the fully masked padding queries.
    expect(logits.every(Number.isFinite)).toBe(true);
    // The tfjs pass honours the same mask and position rule.
    const tfjsPadded = tfjsLogits(ids, mask);
    for (let p = 0; p < short.length; p++)
      expect(
        record('tfjs padded', maxAbsDiff(at(tfjsPadded, s, 1, pad + p), at(alone, short.length + 1, 0, p))),
      ).toBeLessThan(1e-4);
    // One cached step for both rows: the padded row continues at its own position.
    const step = await runStep(
      session,
      spec,
      [[NEXT[0]!], [NEXT[0]!]],
      mask.map((m) => [...m, 1]),
      [[s], [short.length]],
      present,
    );
    expect(
      record('padded batch', maxAbsDiff(at(step.logits, 1, 1, 0), at(alone, short.length + 1, 0, short.length))),
    ).toBeLessThan(1e-4);
  });

  it('refuses weights that are not the spec’s parameters', () => {
    expect(() => exportDecoderOnnx(spec, weights.slice(1))).toThrow(/expected 28 weight tensors, got 27/);
    const swapped = weights.map((w) => (w.name === 'h.0.attn.c_proj.weight' ? { ...w, shape: [32, 96] } : w));
    expect(() => exportDecoderOnnx(spec, swapped)).toThrow(/h\.0\.attn\.c_proj\.weight must have shape \[32,32\]/);
  });
});

describe('decoderLogits (tfjs)', () => {
  it("computes GPT-2's forward pass: a scalar reference written from the definition agrees (1e-4)", () => {
    const all = [...PROMPT, ...NEXT];
    expect(
      record('tfjs vs scalar reference', maxAbsDiff(tfjsLogits([all]), referenceLogits(spec, weights, all))),
    ).toBeLessThan(1e-4);
  });

  it("the one-hot-matmul embedding (the WASM backend's) gives the gather embedding's logits", () => {
    const ids = [PROMPT, [...PROMPT.slice(2), 5, 6]];
    const mask = [PROMPT.map(() => 1), [0, 0, 1, 1, 1, 1, 1]];
    const gather = decoderLogits(tf, spec, weights, ids, mask);
    const oneHot = decoderLogits(tf, spec, weights, ids, mask, { embedding: 'one-hot-matmul' });
    expect(record('one-hot vs gather', maxAbsDiff(gather.dataSync(), oneHot.dataSync()))).toBeLessThan(1e-5);
    tf.dispose([gather, oneHot]);
  });

  it('the one-hot path has a gradient for every parameter and leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    const initial = weights.map((w) => tf.tensor(w.values, w.shape));
    const vars = Object.fromEntries(
      weights.map((w, i) => [w.name, tf.variable(initial[i]!, true, `parity/${w.name}`)]),
    );
    const tokens = tokenBatch(spec, [PROMPT]);
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(
        () => decoderForward(tf, spec, vars, tokens, { embedding: 'one-hot-matmul' }).square().mean() as tf.Scalar,
      ),
    );
    expect(Object.keys(grads).length).toBe(decoderParameterShapes(spec).length);
    for (const name of ['wpe', 'wte', 'h.1.mlp.c_fc.bias'])
      expect(tf.tidy(() => tf.norm(grads[`parity/${name}`]!).dataSync()[0])).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads), ...Object.values(vars), ...initial]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses tokens outside the vocabulary and sequences longer than the context', () => {
    expect(() => decoderLogits(tf, spec, weights, [[V]])).toThrow(/token 97 at 0 is not in \[0, 97\)/);
    expect(() => decoderLogits(tf, spec, weights, [Array(33).fill(1)])).toThrow(
      /33 tokens exceed the context length 32/,
    );
    expect(() => decoderLogits(tf, spec, weights, [[1, 2]], [[1, 2]])).toThrow(/values must be 0 or 1/);
  });
});
