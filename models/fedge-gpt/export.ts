/**
 * Exports the pretrained default language model to models/fedge-gpt/model.int8.onnx:
 *   node models/fedge-gpt/export.ts [--from .lm-build] [--reference <json>] [--out <onnx>]
 * Reads what pretrain.py wrote (spec.json, weights.json + weights.bin), writes the float ONNX decoder, checks it (and
 * the tfjs forward) against the PyTorch logits in test/fixtures/lm/reference-logits.json when present (1e-4),
 * quantizes it int8 weight-only, and puts tokenizer.json and generation_config.json in its metadata_props, so the
 * served version is one file (API.md, "Text generation"). Writes <from>/model.fp32.onnx too, for inspection.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportDecoderOnnx } from '../../federated/model/decoder-export.ts';
import { type DecoderSpec, decoderParameterShapes, parseDecoderSpec } from '../../federated/model/decoder-spec.ts';
import type { NamedWeight } from '../../federated/model/model-spec.ts';
import { quantizeModel } from '../../federated/model/quantize.ts';
import { type CheckResult, FP32_COMPUTE, type ReferenceLogits, checkOnnx, checkTfjs } from './reference-check.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const HERE = join(ROOT, 'models/fedge-gpt');
const REFERENCE = join(ROOT, 'test/fixtures/lm/reference-logits.json');
const OUT = join(HERE, 'model.int8.onnx');
/** The float model must give the PyTorch logits within this. */
const TOLERANCE = 1e-4;
/** The served file's budget (tokenizer included). */
const MAX_BYTES = 5_000_000;

/** weights.json as pretrain.py writes it: the tensors of weights.bin, in order, concatenated float32 little-endian. */
interface WeightsManifest {
  dtype: string;
  byteOrder: string;
  weights: { name: string; shape: number[] }[];
}

class ExportError extends Error {
  override name = 'ExportError';
}

function readJson<T>(path: string): T {
  if (!existsSync(path)) throw new ExportError(`${path} not found (run models/fedge-gpt/pretrain.py first)`);
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export function readWeights(dir: string, spec: DecoderSpec): NamedWeight[] {
  const manifest = readJson<WeightsManifest>(join(dir, 'weights.json'));
  if (manifest.dtype !== 'float32' || manifest.byteOrder !== 'little')
    throw new ExportError(`weights.json: expected float32 little-endian, got ${manifest.dtype} ${manifest.byteOrder}`);
  const bin = readFileSync(join(dir, 'weights.bin'));
  const sizes = manifest.weights.map((w) => w.shape.reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (bin.length !== 4 * total)
    throw new ExportError(`weights.bin: ${bin.length} bytes, weights.json lists ${total} float32 values`);
  const expected = decoderParameterShapes(spec).length;
  if (manifest.weights.length !== expected)
    throw new ExportError(`weights.json: ${manifest.weights.length} tensors, the spec has ${expected}`);
  let offset = 0;
  return manifest.weights.map((w, i) => {
    // Copied out of the file's buffer: a Float32Array needs 4-byte alignment, which the Buffer's offset may lack.
    const values = new Float32Array(bin.buffer.slice(bin.byteOffset + offset, bin.byteOffset + offset + 4 * sizes[i]!));
    offset += 4 * sizes[i]!;
    return { name: w.name, shape: w.shape, values };
  });
}

/** generation_config.json must name the spec's special tokens: the decode loop reads the one, training the other. */
function checkGenerationConfig(spec: DecoderSpec, text: string): void {
  const config = JSON.parse(text) as Record<string, unknown>;
  for (const [key, id] of [
    ['bos_token_id', spec.bosTokenId],
    ['eos_token_id', spec.eosTokenId],
    ['pad_token_id', spec.padTokenId],
  ] as const) {
    if (config[key] !== id)
      throw new ExportError(`generation_config.json: ${key} is ${String(config[key])}, the spec says ${id}`);
  }
}

const show = (r: CheckResult) =>
  `max |Δ| ${r.maxAbsDiff.toExponential(2)}, argmax ${Math.round(r.argmaxAgreement * r.rows)}/${r.rows} rows`;
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

export interface ExportOptions {
  /** the directory pretrain.py wrote */
  from: string;
  /** reference-logits.json; skipped when the file does not exist */
  reference: string;
  out: string;
}

export async function exportFedgeGpt({ from, reference, out }: ExportOptions): Promise<void> {
  const spec = parseDecoderSpec(readJson(join(from, 'spec.json')));
  const weights = readWeights(from, spec);
  const tokenizer = readFileSync(join(HERE, 'tokenizer.json'), 'utf8');
  const generationConfig = readFileSync(join(HERE, 'generation_config.json'), 'utf8');
  checkGenerationConfig(spec, generationConfig);
  const metadata = { 'tokenizer.json': tokenizer, 'generation_config.json': generationConfig };
  const fp32 = exportDecoderOnnx(spec, weights, { metadata });
  writeFileSync(join(from, 'model.fp32.onnx'), fp32);
  const { bytes: int8, report } = quantizeModel(fp32);

  if (existsSync(reference)) {
    const ref = readJson<ReferenceLogits>(reference);
    const onnx = await checkOnnx(spec, fp32, ref);
    const tfjs = checkTfjs(spec, weights, ref);
    console.log(`vs PyTorch: float ONNX (KV cache) ${show(onnx)}; tfjs forward ${show(tfjs)}`);
    for (const [what, r] of [
      ['float ONNX', onnx],
      ['tfjs forward', tfjs],
    ] as const) {
      if (!(r.maxAbsDiff <= TOLERANCE) || r.argmaxAgreement < 1)
        throw new ExportError(`${what} disagrees with the PyTorch logits: ${show(r)} (tolerance ${TOLERANCE})`);
    }
    console.log(
      `vs PyTorch: int8 ONNX (KV cache) ${show(await checkOnnx(spec, int8, ref, FP32_COMPUTE))} (information)`,
    );
  } else console.log(`no ${reference}: the float model is not checked against PyTorch`);

  if (int8.length > MAX_BYTES)
    throw new ExportError(`model.int8.onnx would be ${mb(int8.length)}, over the ${mb(MAX_BYTES)} budget`);
  writeFileSync(out, int8);
  console.log(
    `fp32 ${mb(fp32.length)} (${join(from, 'model.fp32.onnx')}); int8 ${mb(int8.length)} (${out}), ` +
      `${report.quantized.length} int8 weight tensors; in its metadata: tokenizer.json ${mb(tokenizer.length)}, ` +
      `generation_config.json ${generationConfig.length} B`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const flag = (name: string, dflt: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : dflt;
  };
  const options = {
    from: flag('--from', join(ROOT, '.lm-build')),
    reference: flag('--reference', REFERENCE),
    out: flag('--out', OUT),
  };
  if (
    Object.values(options).some((v) => !v) ||
    args.some((a, i) => i % 2 === 0 && !['--from', '--reference', '--out'].includes(a))
  ) {
    console.error(
      'usage: node models/fedge-gpt/export.ts [--from .lm-build] [--reference reference-logits.json] [--out model.int8.onnx]',
    );
    process.exit(2);
  }
  try {
    await exportFedgeGpt(options as ExportOptions);
  } catch (e) {
    if (!(e instanceof ExportError || (e as Error).name === 'ModelSpecError')) throw e;
    console.error(`export: ${(e as Error).message}`);
    process.exit(1);
  }
}
