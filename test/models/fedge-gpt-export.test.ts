/**
 * models/fedge-gpt/export.ts on a stand-in for pretrain.py's output: a tiny decoder's spec.json, weights.json +
 * weights.bin, and reference logits from the scalar GPT-2 reference (in PyTorch's place). It checks the float model,
 * writes the int8 file with the tokenizer and generation config inside, and refuses logits that disagree.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel } from '../../federated/model/onnx-graph.ts';
import { exportFedgeGpt, readWeights } from '../../models/fedge-gpt/export.ts';
import type { ReferenceLogits, RowSummary } from '../../models/fedge-gpt/reference-check.ts';
import { referenceLogits, tinyDecoder as spec, tinyDecoderWeights } from '../fixtures/tiny-decoder.ts';

const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'fedge-gpt-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const weights = tinyDecoderWeights();
const V = spec.vocabSize;

writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
writeFileSync(
  join(dir, 'weights.json'),
  JSON.stringify({
    dtype: 'float32',
    byteOrder: 'little',
    weights: weights.map(({ name, shape }) => ({ name, shape })),
  }),
);
writeFileSync(join(dir, 'weights.bin'), Buffer.concat(weights.map((w) => Buffer.from(w.values.buffer))));

/** What pretrain.py writes: the prefill's last row and three greedy steps, each cut to 64 logits + argmax + max. */
function reference(prompts: number[][]): ReferenceLogits {
  const summary = (row: ArrayLike<number>): RowSummary => {
    let argmax = 0;
    for (let j = 1; j < V; j++) if (row[j]! > row[argmax]!) argmax = j;
    return { first64: Array.from(row).slice(0, 64), argmax, max: row[argmax]! };
  };
  return {
    prompts: prompts.map((ids) => {
      const seq = [...ids];
      const rows: RowSummary[] = [];
      for (let k = 0; k < 4; k++) {
        rows.push(summary(referenceLogits(spec, weights, seq).subarray((seq.length - 1) * V, seq.length * V)));
        seq.push(rows[k]!.argmax);
      }
      return {
        text: '',
        ids,
        prefill_last: rows[0]!,
        steps: [1, 2, 3].map((j) => ({ ...rows[j]!, input_id: rows[j - 1]!.argmax })),
      };
    }),
  };
}

describe('models/fedge-gpt/export.ts', () => {
  const ref = reference([
    [5, 17, 42, 8, 96],
    [60, 3],
  ]);

  it('reads weights.bin in weights.json order, and refuses a file of the wrong size', () => {
    const back = readWeights(dir, spec);
    expect(back.map((w) => w.name)).toEqual(weights.map((w) => w.name));
    back.forEach((w, i) => expect(w.values).toEqual(weights[i]!.values));
    const short = mkdtempSync(join(dir, 'short-'));
    writeFileSync(join(short, 'weights.json'), readFileSync(join(dir, 'weights.json')));
    writeFileSync(join(short, 'weights.bin'), readFileSync(join(dir, 'weights.bin')).subarray(4));
    expect(() => readWeights(short, spec)).toThrow(/weights\.bin: \d+ bytes, weights\.json lists \d+ float32 values/);
  });

  it('checks the float model against the reference and writes the int8 model with its tokenizer inside', async () => {
    writeFileSync(join(dir, 'reference.json'), JSON.stringify(ref));
    const out = join(dir, 'model.int8.onnx');
    await exportFedgeGpt({ from: dir, reference: join(dir, 'reference.json'), out });
    const bytes = readFileSync(out);
    const meta = Object.fromEntries((decodeModel(bytes).metadataProps ?? []).map((p) => [p.key, p.value]));
    expect(meta['tokenizer.json']).toBe(readFileSync(join(root, 'models/fedge-gpt/tokenizer.json'), 'utf8'));
    expect(JSON.parse(meta['generation_config.json']!).eos_token_id).toBe(spec.eosTokenId);
    expect(JSON.parse(meta['fedge.spec']!)).toEqual(spec);
    const session = await ort.InferenceSession.create(bytes);
    expect(session.outputNames[0]).toBe('logits');
    await session.release();
  });

  it('refuses a model whose logits are off by 1e-3 from the reference', async () => {
    const off = structuredClone(ref);
    off.prompts[1]!.steps[2]!.first64[7]! += 1e-3;
    writeFileSync(join(dir, 'off.json'), JSON.stringify(off));
    await expect(
      exportFedgeGpt({ from: dir, reference: join(dir, 'off.json'), out: join(dir, 'x.onnx') }),
    ).rejects.toThrow(/float ONNX disagrees with the PyTorch logits/);
  });
});
