/**
 * readDecoderWeights / writeDecoderWeights on the bundled int8 language model (models/fedge-gpt/model.int8.onnx): read
 * then written back unchanged gives the same bytes; a known ΔW written into it moves the logits as the float model
 * with that ΔW predicts, within int8's error, and the weights read back are base + ΔW within half a quantization step;
 * everything but the changed weights' int8 data and scales (the tokenizer and generation config included) is the
 * base's byte for byte. A float decoder is rewritten exactly; a third-party decoder and a classifier are refused.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exportDecoderOnnx } from '../../../federated/model/decoder-export.ts';
import {
  DecoderWeightsError,
  readDecoderWeights,
  writeDecoderWeights,
} from '../../../federated/model/decoder-weights.ts';
import { decodeModel } from '../../../federated/model/onnx-graph.ts';
import { readMetadataProps } from '../../../federated/model/onnx-metadata.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import { FP32_COMPUTE } from '../../../models/fedge-gpt/reference-check.ts';
import { identityModel } from '../../fixtures/onnx-models.ts';
import { maxAbsDiff, runStep, tinyDecoder, tinyDecoderWeights } from '../../fixtures/tiny-decoder.ts';

const base = new Uint8Array(readFileSync('models/fedge-gpt/model.int8.onnx'));
const { spec, weights } = readDecoderWeights(base);
const byName = new Map(weights.map((w) => [w.name, w.values]));
const PROMPT = [[1, 417, 29, 88, 1530, 7, 260, 3011, 44, 12]];

async function logits(bytes: Uint8Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, FP32_COMPUTE);
  try {
    const n = PROMPT[0]!.length;
    return (await runStep(session, spec, PROMPT, [Array(n).fill(1)], [PROMPT[0]!.map((_, i) => i)])).logits;
  } finally {
    await session.release();
  }
}

/** A ΔW of the size a few rounds of adapters give: ±0.02 on every entry of h.1's attention projection. */
function delta(name: string, scale: number): Float32Array {
  const r = seededRandom(9);
  return byName.get(name)!.map(() => (2 * r() - 1) * scale);
}

describe('readDecoderWeights', () => {
  it("reads fedge-gpt's spec and every parameter, dequantized, in the spec's order and shapes", () => {
    expect(spec).toMatchObject({ kind: 'decoder', layers: 4, embedDim: 256, vocabSize: 4096 });
    expect(weights[0]).toMatchObject({ name: 'wte', shape: [4096, 256] });
    expect(weights.at(-1)).toMatchObject({ name: 'ln_f.bias', shape: [256] });
    for (const w of weights) expect(w.values.length).toBe(w.shape.reduce((a, b) => a * b, 1));
    expect(weights.every((w) => w.values.every(Number.isFinite))).toBe(true);
  });

  it('refuses a decoder without fedge.spec (a third-party export) and a classifier, saying why', () => {
    const thirdParty = new Uint8Array(readFileSync('test/fixtures/third-party/pt-gpt-tiny/model.onnx'));
    expect(() => readDecoderWeights(thirdParty)).toThrow(DecoderWeightsError);
    expect(() => readDecoderWeights(thirdParty)).toThrow(/no fedge.spec metadata: it is not a decoder Fedge exported/);
    const classifier = new Uint8Array(readFileSync('models/mnist-mlp/model.int8.onnx'));
    expect(() => readDecoderWeights(classifier)).toThrow(/not a decoder spec/);
    expect(() => readDecoderWeights(identityModel('FP32'))).toThrow(/no fedge.spec/);
  });
});

describe('writeDecoderWeights', () => {
  it('written back unchanged, the int8 model is the same bytes', () => {
    const all = new Map(weights.map((w) => [w.name, w.values]));
    const written = writeDecoderWeights(base, all);
    expect(written.byteLength).toBe(base.byteLength);
    expect(Buffer.compare(written, base)).toBe(0);
  });

  it('a known ΔW moves the logits as the float model predicts, within int8 error; the rest of the file is the base', async () => {
    const name = 'h.1.attn.c_attn.weight';
    const d = delta(name, 0.02);
    const target = byName.get(name)!.map((v, i) => v + d[i]!);
    const written = writeDecoderWeights(base, new Map([[name, target]]));
    // Same length: the int8 data and scales were patched in place; only they differ.
    expect(written.byteLength).toBe(base.byteLength);
    const was = decodeModel(base).graph!,
      now = decodeModel(written).graph!;
    const changed = now
      .initializer!.filter(
        (t, i) => Buffer.compare(t.rawData ?? new Uint8Array(), was.initializer![i]!.rawData ?? new Uint8Array()) !== 0,
      )
      .map((t) => t.name);
    expect(changed).toEqual([`${name}_quantized`, `${name}_scale`]);
    expect(JSON.stringify(now.node)).toBe(JSON.stringify(was.node));
    expect(JSON.stringify(now.input) + JSON.stringify(now.output)).toBe(
      JSON.stringify(was.input) + JSON.stringify(was.output),
    );
    expect(readMetadataProps(written)).toEqual(readMetadataProps(base));

    // Read back: base + ΔW within half a step of each output channel's new scale.
    const back = readDecoderWeights(written).weights.find((w) => w.name === name)!.values;
    const scales = new Float32Array(now.initializer!.find((t) => t.name === `${name}_scale`)!.rawData!.slice().buffer);
    const outputs = 3 * spec.embedDim;
    let worst = 0;
    back.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - target[i]!) / scales[i % outputs]!)));
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-3);
    for (const w of readDecoderWeights(written).weights)
      if (w.name !== name) expect(w.values).toEqual(byName.get(w.name));

    // Logits: the float model of (base + ΔW) is the reference; the written int8 model must follow it, far closer
    // than the distance ΔW moved them.
    const floatWeights = weights.map((w) => (w.name === name ? { ...w, values: target } : w));
    const [before, reference, after] = await Promise.all([
      logits(base),
      logits(exportDecoderOnnx(spec, floatWeights)),
      logits(written),
    ]);
    const moved = maxAbsDiff(before, reference);
    const error = maxAbsDiff(after, reference);
    console.log(`ΔW ±0.02 on ${name}: logits moved ${moved.toFixed(3)}, int8 error ${error.toFixed(4)}`);
    expect(moved).toBeGreaterThan(0.05);
    expect(error).toBeLessThan(moved / 5);
  });

  it('rewrites a float decoder exactly, and refuses a weight it does not have or a wrong length', () => {
    const fp32 = exportDecoderOnnx(tinyDecoder, tinyDecoderWeights());
    const w = readDecoderWeights(fp32).weights;
    const c = w.find((x) => x.name === 'h.0.mlp.c_fc.weight')!;
    const moved = c.values.map((v) => v + 0.125);
    const back = readDecoderWeights(writeDecoderWeights(fp32, new Map([[c.name, moved]]))).weights;
    expect(back.find((x) => x.name === c.name)!.values).toEqual(moved);
    expect(() => writeDecoderWeights(fp32, new Map([['h.9.mlp.c_fc.weight', moved]]))).toThrow(/no weight/);
    expect(() => writeDecoderWeights(fp32, new Map([[c.name, moved.subarray(1)]]))).toThrow(/values, got/);
    expect(() => writeDecoderWeights(fp32, new Map([[c.name, moved.map(() => Number.NaN)]]))).toThrow(/finite/);
  });
});
