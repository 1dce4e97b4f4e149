/**
 * Quantizes a trained model's fp32 ONNX to int8 (weight-only), measures both on the recipe's held-out set
 * with onnxruntime-node, and writes models/<name>/{model.int8.onnx, card.json}.
 *   node models/model-card.ts <name>
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { quantizeModel } from '../federated/model/quantize.ts';
import { type Examples, RECIPES } from './recipes.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function heldOutAccuracy(bytes: Uint8Array, inputShape: number[], set: Examples): Promise<number> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', set.x, [set.n, ...inputShape]) });
  const p = out[session.outputNames[0]!]!.data as Float32Array;
  const classes = p.length / set.n;
  let ok = 0;
  for (let i = 0; i < set.n; i++) {
    const row = p.subarray(i * classes, (i + 1) * classes);
    if (row.indexOf(Math.max(...row)) === set.y[i]) ok++;
  }
  await session.release();
  return ok / set.n;
}

/**
 * What each output index means, from the spec's labels: the card says it, since the ONNX graph (and so the edge's
 * metadata) names the output but not its classes.
 */
export function outputLabels(spec: {
  outputName: string;
  labels: string[];
}): Record<string, { labels: string[]; meaning: string }> {
  const name = spec.outputName;
  return {
    [name]: {
      labels: spec.labels,
      meaning: `softmax over the labels, in this order: ${spec.labels.map((l, i) => `${name}[${i}] is ${l}`).join(', ')}`,
    },
  };
}

export async function writeCard(name: string, test: Examples = RECIPES[name]!.load().test): Promise<void> {
  const dir = new URL(`./${name}/`, import.meta.url);
  const card = JSON.parse(readFileSync(new URL('card.json', dir), 'utf8'));
  const fp32 = new Uint8Array(readFileSync(new URL('model.fp32.onnx', dir)));
  const { bytes: int8, report } = quantizeModel(fp32, { mode: 'weight-only' });
  writeFileSync(new URL('model.int8.onnx', dir), int8);
  const [accFp32, accInt8] = [
    await heldOutAccuracy(fp32, card.spec.inputShape, test),
    await heldOutAccuracy(int8, card.spec.inputShape, test),
  ];
  card.fp32 = { file: 'model.fp32.onnx', bytes: fp32.length, sha256: sha256(fp32), heldOutAccuracy: accFp32 };
  card.int8 = {
    file: 'model.int8.onnx',
    bytes: int8.length,
    sha256: sha256(int8),
    heldOutAccuracy: accInt8,
    sizeRatio: Number((int8.length / fp32.length).toFixed(4)),
    quantization: 'weight-only int8, per output channel, symmetric',
    quantizedWeights: report.quantized.map((q) => q.weight),
  };
  card.outputs = outputLabels(card.spec);
  card.heldOut = { examples: test.n };
  card.evaluatedWith = `onnxruntime-node, ${test.n} held-out examples`;
  writeFileSync(new URL('card.json', dir), `${JSON.stringify(card, null, 2)}\n`);
  console.log(
    `[${name}] fp32 ${fp32.length} B ${(accFp32 * 100).toFixed(2)}%  int8 ${int8.length} B (${card.int8.sizeRatio}×) ${(accInt8 * 100).toFixed(2)}%`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const name = process.argv[2];
  if (!name || !RECIPES[name] || !existsSync(new URL(`./${name}/card.json`, import.meta.url))) {
    console.error(`usage: node models/model-card.ts <trained model: ${Object.keys(RECIPES).join('|')}>`);
    process.exit(2);
  }
  await writeCard(name);
}
