/** `fedge quantize`: quantizeModel on a file, then size and output deviation (fp32 vs int8) on generated inputs. */
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { decodeModel } from '../federated/model/onnx-graph.ts';
import { type QuantizeMode, quantizeModel } from '../federated/model/quantize.ts';
import { generatedInputs } from './generated-inputs.ts';
import { UsageError } from './usage-error.ts';


function parseArgs(args: string[]): { input: string; output: string; mode: QuantizeMode; minElements?: number; samples: number } {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) positional.push(a);
    else if (['--mode', '--min-elements', '--samples'].includes(a) && args[i + 1] !== undefined) flags[a] = args[++i]!;
    else throw new UsageError(`unknown or incomplete option '${a}'`);
  }
  if (positional.length !== 2) throw new UsageError('quantize needs an input and an output file');
  const mode = (flags['--mode'] ?? 'weight-only') as QuantizeMode;
  if (mode !== 'weight-only' && mode !== 'dynamic') throw new UsageError(`--mode must be weight-only or dynamic, got '${mode}'`);
  const int = (flag: string) => {
    if (flags[flag] === undefined) return undefined;
    const n = Number(flags[flag]);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${flags[flag]}'`);
    return n;
  };
  return { input: positional[0]!, output: positional[1]!, mode, minElements: int('--min-elements'), samples: int('--samples') ?? 32 };
}

async function outputs(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Map<string, Float32Array | Float64Array>> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(feeds);
  const result = new Map<string, Float32Array | Float64Array>();
  for (const name of session.outputNames) {
    const data = out[name]!.data;
    if (data instanceof Float32Array || data instanceof Float64Array) result.set(name, data);
  }
  await session.release();
  return result;
}

const bytesText = (n: number) => `${n.toLocaleString('en-US')} B`;

export async function quantizeCommand(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  let fp32: Uint8Array;
  try {
    fp32 = new Uint8Array(readFileSync(opts.input));
  } catch (e) {
    throw new Error(`cannot read ${opts.input}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { bytes, report } = quantizeModel(fp32, { mode: opts.mode, minElements: opts.minElements });
  writeFileSync(opts.output, bytes);
  console.log(`fedge quantize: ${opts.input} → ${opts.output} (${opts.mode})`);
  console.log(`  size      ${bytesText(fp32.byteLength)} → ${bytesText(bytes.byteLength)} (${(bytes.byteLength / fp32.byteLength).toFixed(3)}×)`);
  const values = report.quantized.reduce((n, q) => n + q.elements, 0);
  console.log(`  int8      ${report.quantized.length} weight tensor(s), ${values.toLocaleString('en-US')} values: ${report.quantized.map((q) => `${q.weight}${q.axis === null ? ' (per tensor)' : ''}`).join(', ')}`);
  for (const s of report.skipped) console.log(`  kept fp32 ${s.node}: ${s.reason}`);

  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  const inputs = generatedInputs(decodeModel(fp32), opts.samples);
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, new ort.Tensor(i.type, i.data as never, i.dims)]));
  const [a, b] = [await outputs(fp32, feeds), await outputs(bytes, feeds)];
  for (const [name, ref] of a) {
    const got = b.get(name)!;
    let max = 0, sum = 0, scale = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(ref[i]! - got[i]!);
      max = Math.max(max, d);
      sum += d;
      scale = Math.max(scale, Math.abs(ref[i]!));
    }
    console.log(`  deviation ${name} on ${opts.samples} generated inputs: max ${max.toExponential(2)}, mean ${(sum / ref.length).toExponential(2)} (largest |output| ${scale.toPrecision(3)})`);
  }
}
