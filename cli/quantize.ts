/**
 * `fedge quantize`: quantizeModel on a file, then size and output deviation (fp32 vs int8) on generated or given
 * inputs. The output file is written only once every check passed — the int8 model loads, runs on the same inputs
 * as the fp32 one, gives finite outputs and (with --max-deviation) stays within the bound — and atomically
 * (a temporary file renamed), so a failed run leaves nothing behind.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { decodeModel } from '../federated/model/onnx-graph.ts';
import { type QuantizeMode, quantizeModel } from '../federated/model/quantize.ts';
import { type GeneratedInput, generatedInputs, givenInputs, parseShapes } from './generated-inputs.ts';
import { UsageError } from './usage-error.ts';

interface QuantizeArgs {
  input: string;
  output: string;
  mode: QuantizeMode;
  minElements?: number | undefined;
  samples: number;
  shapes: Map<string, number[]>;
  inputsFile?: string | undefined;
  maxDeviation?: number | undefined;
}

const VALUE_FLAGS = ['--mode', '--min-elements', '--samples', '--shape', '--inputs', '--max-deviation'];

function parseArgs(args: string[]): QuantizeArgs {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  const shapeArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) positional.push(a);
    else if (VALUE_FLAGS.includes(a) && args[i + 1] !== undefined) {
      if (a === '--shape') shapeArgs.push(args[++i]!);
      else flags[a] = args[++i]!;
    } else throw new UsageError(`unknown or incomplete option '${a}'`);
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
  let maxDeviation: number | undefined;
  if (flags['--max-deviation'] !== undefined) {
    maxDeviation = Number(flags['--max-deviation']);
    if (!(maxDeviation >= 0) || !Number.isFinite(maxDeviation)) throw new UsageError(`--max-deviation must be a non-negative number, got '${flags['--max-deviation']}'`);
  }
  if (flags['--inputs'] !== undefined && shapeArgs.length) throw new UsageError('give either --inputs or --shape: the inputs file fixes every shape');
  return {
    input: positional[0]!, output: positional[1]!, mode, minElements: int('--min-elements'), samples: int('--samples') ?? 32,
    shapes: parseShapes(shapeArgs), inputsFile: flags['--inputs'], maxDeviation,
  };
}

/** The model's tensor outputs on `feeds`; non-tensor outputs (sequences, maps) are left out and named in `skipped`. */
async function outputs(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, which: string): Promise<{ values: Map<string, ArrayLike<number>>; skipped: string[] }> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes);
  } catch (e) {
    throw new Error(`the ${which} model does not load in onnxruntime-web: ${reason(e)}`);
  }
  try {
    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      out = await session.run(feeds);
    } catch (e) {
      const hint = which === 'fp32' ? ' (inputs with open dimensions were generated with them set to 1: give real sizes with --shape name=1,16000, or real inputs with --inputs file.json)' : '';
      throw new Error(`the ${which} model failed on the inputs: ${reason(e)}${hint}`);
    }
    const values = new Map<string, ArrayLike<number>>();
    const skipped: string[] = [];
    for (const name of session.outputNames) {
      const data = out[name]?.data;
      if (data instanceof Float32Array || data instanceof Float64Array || data instanceof Int32Array || data instanceof Uint8Array || data instanceof Int8Array) values.set(name, data);
      else skipped.push(name);
    }
    return { values, skipped };
  } finally {
    await session.release();
  }
}

const reason = (e: unknown) => String((e as Error)?.message ?? e).replace(/\s+/g, ' ').slice(0, 400);
const bytesText = (n: number) => `${n.toLocaleString('en-US')} B`;

/** Writes `bytes` to `path` through a temporary file in the same folder and a rename: the file is whole or absent. */
function writeAtomically(path: string, bytes: Uint8Array): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, bytes);
    renameSync(temporary, path);
  } finally {
    rmSync(temporary, { force: true });
  }
}

export async function quantizeCommand(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  let fp32: Uint8Array;
  try {
    fp32 = new Uint8Array(readFileSync(opts.input));
  } catch (e) {
    throw new Error(`cannot read ${opts.input}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { bytes, report } = quantizeModel(fp32, { mode: opts.mode, minElements: opts.minElements });

  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  const model = decodeModel(fp32);
  let inputs: GeneratedInput[];
  let described: string;
  if (opts.inputsFile) {
    let text: string;
    try {
      text = readFileSync(opts.inputsFile, 'utf8');
    } catch (e) {
      throw new Error(`cannot read ${opts.inputsFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    inputs = givenInputs(model, text, opts.inputsFile);
    described = `the inputs in ${opts.inputsFile}`;
  } else {
    inputs = generatedInputs(model, opts.samples, opts.shapes);
    described = `${opts.samples} generated inputs`;
  }
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, new ort.Tensor(i.type, i.data as never, i.dims)]));
  const a = await outputs(fp32, feeds, 'fp32');
  const b = await outputs(bytes, feeds, 'int8');

  const lines: string[] = [];
  let worst = 0;
  for (const [name, ref] of a.values) {
    const got = b.values.get(name);
    if (!got || got.length !== ref.length) throw new Error(`the int8 model's output '${name}' does not match the fp32 one's shape`);
    let max = 0, sum = 0, scale = 0;
    for (let i = 0; i < ref.length; i++) {
      if (!Number.isFinite(got[i]!)) throw new Error(`the int8 model's output '${name}' has a non-finite value (${got[i]}) at ${i}`);
      const d = Math.abs(ref[i]! - got[i]!);
      max = Math.max(max, d);
      sum += d;
      scale = Math.max(scale, Math.abs(ref[i]!));
    }
    worst = Math.max(worst, max);
    // Output names are quoted: exporters name outputs anything ('39', 'output_probability').
    lines.push(`  deviation of output '${name}' on ${described}: max ${max.toExponential(2)}, mean ${(sum / ref.length).toExponential(2)} (largest |output| ${scale.toPrecision(3)})`);
  }
  for (const name of a.skipped) lines.push(`  output '${name}' is not a numeric tensor (a sequence or map): not compared`);
  if (opts.maxDeviation !== undefined && worst > opts.maxDeviation) {
    for (const l of lines) console.error(l);
    throw new Error(`the largest output deviation ${worst.toExponential(2)} is above --max-deviation ${opts.maxDeviation}; ${opts.output} was not written`);
  }

  writeAtomically(opts.output, bytes);
  console.log(`fedge quantize: ${opts.input} → ${opts.output} (${opts.mode})`);
  console.log(`  size      ${bytesText(fp32.byteLength)} → ${bytesText(bytes.byteLength)} (${(bytes.byteLength / fp32.byteLength).toFixed(3)}×)`);
  const values = report.quantized.reduce((n, q) => n + q.elements, 0);
  console.log(`  int8      ${report.quantized.length} weight tensor(s), ${values.toLocaleString('en-US')} values: ${report.quantized.map((q) => `${q.weight}${q.axis === null ? ' (per tensor)' : ''}`).join(', ')}`);
  for (const s of report.skipped) console.log(`  kept fp32 ${s.node}: ${s.reason}`);
  for (const l of lines) console.log(l);
}
