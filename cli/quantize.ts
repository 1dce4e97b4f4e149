/**
 * `fedge quantize`: quantizeModel on a file (int8 weight-only or dynamic, or fp16), then size and output deviation
 * (fp32 vs quantized) on generated inputs (--shape sizes them, --value fixes an input such as a sample rate) or on
 * given ones (--inputs), checked against a tolerance it prints — --max-deviation X
 * (absolute) or X% (of each output's largest |fp32 value|), by default a share of that largest value per storage
 * type. The output file is written only once every check passed — the quantized model loads, runs on the same
 * inputs as the fp32 one, gives finite outputs and stays within the tolerance — and atomically (a temporary file
 * renamed), so a failed run leaves nothing behind.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { decodeModel } from '../federated/model/onnx-graph.ts';
import { type QuantizeMode, type QuantizeReport, quantizeModel } from '../federated/model/quantize.ts';
import { type GeneratedInput, generatedInputs, givenInputs, parseShapes, parseValues } from './generated-inputs.ts';
import { UsageError } from './usage-error.ts';
import { writeAtomically } from './write-atomically.ts';

const MODES: QuantizeMode[] = ['weight-only', 'dynamic', 'fp16'];

/** A bound on |quantized − fp32| per output: absolute, or a share of the output's largest |fp32 value|. */
export interface Tolerance {
  value: number;
  relative: boolean;
  /** where it comes from, for messages: `--max-deviation 5%` or `the default tolerance for int8` */
  source: string;
}

/**
 * The default tolerance per storage type, relative to each output's largest |fp32 value|: a guard against a broken
 * quantization, not a promise of quality — the deviation printed is the quality figure, and --max-deviation sets
 * the bound a use needs. int8 weights carry up to ½ step of 1/127 of each channel's largest weight, which a deep
 * or recurrent model amplifies: Silero VAD's LSTM state outputs move by up to ~19 % of their range on random
 * inputs (its speech probability, streamed, by ~0.01); fp16 carries ~0.05 % per weight.
 */
export const DEFAULT_TOLERANCE: Record<QuantizeReport['storage'], number> = { int8: 0.25, float16: 0.01 };

interface QuantizeArgs {
  input: string;
  output: string;
  mode: QuantizeMode;
  minElements?: number | undefined;
  samples: number;
  shapes: Map<string, number[]>;
  values: Map<string, number[]>;
  inputsFile?: string | undefined;
  tolerance?: Tolerance | undefined;
}

const VALUE_FLAGS = ['--mode', '--min-elements', '--samples', '--shape', '--value', '--inputs', '--max-deviation'];

/** `--max-deviation 0.01` (absolute) or `--max-deviation 5%` (of each output's largest |value|). */
function parseTolerance(text: string): Tolerance {
  const relative = text.endsWith('%');
  const value = Number(relative ? text.slice(0, -1) : text) / (relative ? 100 : 1);
  if (!(value >= 0) || !Number.isFinite(value) || text.trim() === '' || text === '%')
    throw new UsageError(`--max-deviation must be a non-negative number or percentage (0.01, 5%), got '${text}'`);
  return { value, relative, source: `--max-deviation ${text}` };
}

function parseArgs(args: string[]): QuantizeArgs {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  const lists: Record<string, string[]> = { '--shape': [], '--value': [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) positional.push(a);
    else if (VALUE_FLAGS.includes(a) && args[i + 1] !== undefined) {
      if (lists[a]) lists[a].push(args[++i]!);
      else flags[a] = args[++i]!;
    } else throw new UsageError(`unknown or incomplete option '${a}'`);
  }
  if (positional.length !== 2) throw new UsageError('quantize needs an input and an output file');
  const mode = (flags['--mode'] ?? 'weight-only') as QuantizeMode;
  if (!MODES.includes(mode)) throw new UsageError(`--mode must be ${MODES.join(', ')}, got '${mode}'`);
  const int = (flag: string) => {
    if (flags[flag] === undefined) return undefined;
    const n = Number(flags[flag]);
    if (!Number.isSafeInteger(n) || n < 1)
      throw new UsageError(`${flag} must be a positive integer, got '${flags[flag]}'`);
    return n;
  };
  const tolerance = flags['--max-deviation'] === undefined ? undefined : parseTolerance(flags['--max-deviation']);
  if (flags['--inputs'] !== undefined && (lists['--shape']!.length || lists['--value']!.length))
    throw new UsageError('give either --inputs or --shape/--value: the inputs file fixes every shape and value');
  return {
    input: positional[0]!,
    output: positional[1]!,
    mode,
    minElements: int('--min-elements'),
    samples: int('--samples') ?? 32,
    shapes: parseShapes(lists['--shape']!),
    values: parseValues(lists['--value']!),
    inputsFile: flags['--inputs'],
    tolerance,
  };
}

/** The model's tensor outputs on `feeds`; non-tensor outputs (sequences, maps) are left out and named in `skipped`. */
async function outputs(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  which: string,
): Promise<{ values: Map<string, ArrayLike<number>>; skipped: string[] }> {
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
      const hint =
        which === 'fp32'
          ? ' (inputs with open dimensions were generated with them set to 1: give real sizes with --shape name=1,16000, or real inputs with --inputs file.json)'
          : '';
      throw new Error(`the ${which} model failed on the inputs: ${reason(e)}${hint}`);
    }
    const values = new Map<string, ArrayLike<number>>();
    const skipped: string[] = [];
    for (const name of session.outputNames) {
      const data = out[name]?.data;
      if (
        data instanceof Float32Array ||
        data instanceof Float64Array ||
        data instanceof Int32Array ||
        data instanceof Uint8Array ||
        data instanceof Int8Array
      )
        values.set(name, data);
      else skipped.push(name);
    }
    return { values, skipped };
  } finally {
    await session.release();
  }
}

const reason = (e: unknown) =>
  String((e as Error)?.message ?? e)
    .replace(/\s+/g, ' ')
    .slice(0, 400);
const bytesText = (n: number) => `${n.toLocaleString('en-US')} B`;

export interface OutputDeviation {
  name: string;
  /** largest and mean |quantized − fp32| */
  max: number;
  mean: number;
  /** largest |fp32 value| */
  scale: number;
}

/**
 * Both models on the same feeds in onnxruntime-web: each numeric output's deviation; `skipped` names the outputs
 * that are not numeric tensors. Throws when the quantized model fails, changes a shape or gives a non-finite value.
 */
export async function outputDeviations(
  fp32: Uint8Array,
  quantized: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  kind: string,
): Promise<{ deviations: OutputDeviation[]; skipped: string[] }> {
  const a = await outputs(fp32, feeds, 'fp32');
  const b = await outputs(quantized, feeds, kind);
  const deviations: OutputDeviation[] = [];
  for (const [name, ref] of a.values) {
    const got = b.values.get(name);
    if (!got || got.length !== ref.length)
      throw new Error(`the ${kind} model's output '${name}' does not match the fp32 one's shape`);
    let max = 0,
      sum = 0,
      scale = 0;
    for (let i = 0; i < ref.length; i++) {
      if (!Number.isFinite(got[i]!))
        throw new Error(`the ${kind} model's output '${name}' has a non-finite value (${got[i]}) at ${i}`);
      const d = Math.abs(ref[i]! - got[i]!);
      max = Math.max(max, d);
      sum += d;
      scale = Math.max(scale, Math.abs(ref[i]!));
    }
    deviations.push({ name, max, mean: sum / ref.length, scale });
  }
  return { deviations, skipped: a.skipped };
}

/** The largest deviation `t` allows on an output whose largest |fp32 value| is `scale`. */
export const toleranceBound = (t: Tolerance, scale: number) => (t.relative ? t.value * scale : t.value);

const exp = (v: number) => v.toExponential(2);
const percent = (v: number) => `${+(v * 100).toPrecision(3)} %`;
const describeTolerance = (t: Tolerance) =>
  t.relative ? `${percent(t.value)} of each output's largest |value|` : `max deviation ${exp(t.value)}`;

export async function quantizeCommand(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  let fp32: Uint8Array;
  try {
    fp32 = new Uint8Array(readFileSync(opts.input));
  } catch (e) {
    throw new Error(`cannot read ${opts.input}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { bytes, report } = quantizeModel(fp32, { mode: opts.mode, minElements: opts.minElements });
  const kind = report.storage === 'int8' ? 'int8' : 'fp16';
  const tolerance = opts.tolerance ?? {
    value: DEFAULT_TOLERANCE[report.storage],
    relative: true,
    source: `the default tolerance for ${kind}`,
  };

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
    inputs = generatedInputs(model, opts.samples, opts.shapes, 1, opts.values);
    described = `${opts.samples} generated inputs`;
  }
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, new ort.Tensor(i.type, i.data as never, i.dims)]));
  const { deviations, skipped } = await outputDeviations(fp32, bytes, feeds, kind);

  const lines: string[] = [];
  let over: string | undefined;
  for (const { name, max, mean, scale } of deviations) {
    const bound = toleranceBound(tolerance, scale);
    // Output names are quoted: exporters name outputs anything ('39', 'output_probability').
    lines.push(
      `  deviation of output '${name}' on ${described}: max ${exp(max)}, mean ${exp(mean)} (largest |output| ${scale.toPrecision(3)}, tolerance ${exp(bound)})`,
    );
    if (max > bound && over === undefined) {
      const of = tolerance.relative
        ? ` (${percent(tolerance.value)} of its largest |value| ${scale.toPrecision(3)} = ${exp(bound)})`
        : '';
      over = `output '${name}' deviates by ${exp(max)}, above ${tolerance.source}${of}`;
    }
  }
  for (const name of skipped)
    lines.push(`  output '${name}' is not a numeric tensor (a sequence or map): not compared`);
  if (over !== undefined) {
    for (const l of lines) console.error(l);
    const hint = opts.tolerance ? '' : ' (accept a larger one with --max-deviation X or X%)';
    throw new Error(`${over}${hint}; ${opts.output} was not written`);
  }

  writeAtomically(opts.output, bytes);
  console.log(`fedge quantize: ${opts.input} → ${opts.output} (${opts.mode})`);
  console.log(
    `  size      ${bytesText(fp32.byteLength)} → ${bytesText(bytes.byteLength)} (${(bytes.byteLength / fp32.byteLength).toFixed(3)}×)`,
  );
  const values = report.quantized.reduce((n, q) => n + q.elements, 0);
  const inSubgraphs = report.quantized.filter((q) => q.graph !== 'main').length;
  const where = inSubgraphs ? ` (${inSubgraphs} in subgraphs)` : '';
  console.log(
    `  ${kind.padEnd(9)} ${report.quantized.length} weight tensor(s)${where}, ${values.toLocaleString('en-US')} values: ${report.quantized.map((q) => `${q.weight}${q.axis === null && kind === 'int8' ? ' (per tensor)' : ''}`).join(', ')}`,
  );
  for (const n of report.notes) console.log(`  note      ${n}`);
  for (const s of report.skipped) console.log(`  kept fp32 ${s.node}: ${s.reason}`);
  for (const l of lines) console.log(l);
  const set = opts.tolerance ? '' : '; set another with --max-deviation X or X%';
  console.log(`  tolerance ${describeTolerance(tolerance)} (${tolerance.source}${set}): every output within`);
}
