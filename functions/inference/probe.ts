/**
 * The run at upload. A model that loads is stored unless something its bytes alone decide makes it unservable; the
 * run only reports. Without a warm-up the run is on inputs built from the model's own metadata — every dynamic
 * dimension 1, every element zero (false for BOOL, empty for BYTES). Such inputs are a guess: Silero VAD v5 needs
 * ≥ 97 audio samples and a sample rate of 8000 or 16000, a Reshape may fit only one size. So a failure there is
 * not a refusal but the verdict stored with the version (`probe: {ok: false, inputs: 'generated', shapes, error}`),
 * after a second try with open dimensions at PROBE_LENGTH except those the model names as a batch; the first
 * failure's reason is the one reported. Refused (400) are only: fixed input shapes above what any request may send,
 * and — at those smallest inputs — more memory than the WASM heap bound or more output elements than a response
 * may carry (larger inputs would only need more). A run out of memory is tried once more after the cached sessions
 * are released (memory.ts); only when it still does not fit with no other session alive is that the model's verdict
 * (400) — while other sessions hold memory it is a 503, and the upload may be retried.
 *
 * With a warm-up (the uploader's shapes and fill values, `input:1x512,state:2x1x128,sr:=16000`, like Triton's
 * model_warmup) the run is on those inputs, and any failure is a refusal: the uploader said what the model takes.
 *
 * What a passing run cannot promise: values decide some failures (a Range whose delta is an input). Whatever is
 * stored, every later run's failure is still a 400 with ORT's reason (503/507 out of memory: memory.ts), and the WASM heap
 * bound holds whatever it allocates.
 */
import { refuseModel } from './errors.ts';
import { MemoryBusyError, outOfMemory, releaseHeldSessions } from './memory.ts';
import { ModelRunError } from './run-error.ts';
import { DATATYPE_INFO } from '../../federated/oip/datatypes.ts';
import { TensorError, refuseTensor } from '../../federated/oip/tensor-error.ts';
import type { LoadedModel } from './model-loader.ts';
import type { InferInput } from './infer-request.ts';
import type { ProbeVerdict } from '../registry/model-record.ts';
import { clip, quote, showShape } from './quote.ts';
import { runSession } from './session-cache.ts';
import { type Tensor, decodeInputs } from './tensor-codec.ts';

export interface ProbeLimits {
  /** Elements one request (inputs added up) or one response (outputs added up) may carry. */
  maxElements: number;
}

/** Size the second try gives open dimensions after the first: a second of 16 kHz audio is 16,000; 512 samples is a frame. */
export const PROBE_LENGTH = 512;
const BATCH_NAME = /batch|^n$|^b$|^bs$/i;

/** One input of an uploader's warm-up: its shape, and the value every element gets (zeros when absent). */
export interface WarmupInput {
  name: string;
  shape: number[];
  value?: string | undefined;
}

const WARMUP_SYNTAX =
  'name:d1xd2x…[=value] per input, comma-separated (e.g. input:1x512,state:2x1x128,sr:=16000; a scalar has no dimensions)';
const DIMS = /^\d+(?:x\d+)*$/;

/**
 * Parses the `warmup` query parameter(s): `name:d1xd2…[=value]`, comma-separated, one entry per input; several
 * `warmup` parameters are read as one list. Only the syntax is checked here (400, TensorError); whether the
 * shapes fit the model is checked once it is loaded (warmupInputs).
 */
export function parseWarmup(params: readonly string[]): WarmupInput[] {
  const entries = params.flatMap((p) => p.split(','));
  if (entries.every((e) => e.trim() === '')) refuseTensor(`warmup is empty; give ${WARMUP_SYNTAX}`);
  const seen = new Set<string>();
  return entries.map((entry) => {
    // `name:1x512=v`: the value is everything after the first `=`; the name everything before the last `:` ahead of
    // it, so ONNX names with `:` (`onnx::Flatten_0`) work, names with `,` or `=` do not. Linear in the entry's length.
    const text = entry.trim();
    const eq = text.indexOf('=');
    const head = eq < 0 ? text : text.slice(0, eq);
    const colon = head.lastIndexOf(':');
    const [name, dims] = [head.slice(0, colon), head.slice(colon + 1)];
    if (colon < 1 || (dims !== '' && !DIMS.test(dims)))
      refuseTensor(`warmup entry ${quote(entry)} is not ${WARMUP_SYNTAX}`);
    if (seen.has(name)) refuseTensor(`warmup names input ${quote(name)} twice`);
    seen.add(name);
    const shape = dims ? dims.split('x').map(Number) : [];
    if (shape.some((d) => !Number.isSafeInteger(d)))
      refuseTensor(`warmup entry ${quote(entry)}: a dimension is too large`);
    return { name, shape, value: eq < 0 ? undefined : text.slice(eq + 1) };
  });
}

/** A run's inputs in the warm-up syntax: `input:1x512,state:2x1x128,sr:` (values shown only when the warm-up gave them). */
export function showWarmup(inputs: readonly WarmupInput[]): string {
  return clip(
    inputs.map((t) => `${t.name}:${t.shape.join('x')}${t.value !== undefined ? `=${t.value}` : ''}`).join(','),
    300,
  );
}

/** The JSON element a warm-up value stands for, in the input's datatype; tensor-codec checks it like a request's. */
function warmupElement(datatype: string, value: string | undefined): unknown {
  if (datatype === 'BYTES') return value ?? '';
  if (value === undefined) return datatype === 'BOOL' ? false : 0;
  const v = value.trim();
  if (datatype === 'BOOL' && (v === 'true' || v === 'false')) return v === 'true';
  if ((datatype === 'INT64' || datatype === 'UINT64') && /^-?\d+$/.test(v) && !Number.isSafeInteger(Number(v)))
    return v;
  return v === '' ? value : Number(v);
}

/**
 * The warm-up as tensors for `model`: every input with an open dimension must be named; an input of fixed shape may
 * be left out (zeros). Shapes, datatypes, values and the element limit are checked as a request's inputs are
 * (decodeInputs): 400 (TensorError, prefixed `warmup:`) when they do not fit.
 */
export function warmupInputs(
  model: LoadedModel,
  warmup: readonly WarmupInput[],
  limits: ProbeLimits,
): { tensors: Tensor[]; shown: string } {
  const given = new Map(warmup.map((w) => [w.name, w]));
  const taken = new Set(model.inputs.map((m) => m.name));
  const unknown = warmup.find((w) => !taken.has(w.name));
  if (unknown)
    refuseTensor(
      `warmup names ${quote(unknown.name)}, which is not an input; the model takes ${model.inputs.map((m) => `${quote(m.name)} ${showShape(m.shape)}`).join(', ')}`,
    );
  const missing = model.inputs.filter((m) => !given.has(m.name) && m.shape.some((d) => d < 0));
  if (missing.length) {
    refuseTensor(
      `warmup gives no shape for ${missing.map((m) => `${quote(m.name)} ${showShape(m.shape)}`).join(', ')}: every input with open dimensions (-1) needs one`,
    );
  }
  const used: WarmupInput[] = model.inputs.map((m) => given.get(m.name) ?? { name: m.name, shape: m.shape });
  let budget = limits.maxElements;
  const requests: InferInput[] = used.map((w) => {
    const datatype = model.inputs.find((m) => m.name === w.name)!.datatype;
    let count = 1;
    for (const d of w.shape) {
      count *= d;
      if (count > budget)
        refuseTensor(
          `warmup: input ${quote(w.name)} of shape ${showShape(w.shape)} has more elements than the ${limits.maxElements} a request may carry (all inputs together)`,
        );
    }
    budget -= count;
    return {
      name: w.name,
      datatype,
      shape: w.shape,
      data: new Array<unknown>(count).fill(warmupElement(datatype, w.value)),
    };
  });
  try {
    return { tensors: decodeInputs(requests, model.inputs, undefined, limits), shown: showWarmup(used) };
  } catch (e) {
    if (e instanceof TensorError) refuseTensor(`warmup: ${e.message}`);
    throw e;
  }
}

/**
 * The probe's inputs, zeros: open dimensions 1, or with `length` the second try's sizes — a dimension the model
 * names like a batch (`batch`, `N`, …) 1, any other open dimension `length` (a blank first dimension counts as the
 * batch). Names are ORT's, so dimensions that share a name get one size. 400 when the fixed dimensions alone exceed
 * what any request may send.
 */
export function probeInputs(model: LoadedModel, limits: ProbeLimits, length = 1): Tensor[] {
  const named = new Map(model.session.inputMetadata.map((m) => [m.name, 'shape' in m ? m.shape : []] as const));
  const open = (input: string, i: number): number => {
    if (length === 1) return 1;
    const dim = named.get(input)?.[i];
    if (typeof dim === 'string' && dim !== '') return BATCH_NAME.test(dim) ? 1 : length;
    return i === 0 ? 1 : length;
  };
  let total = 0;
  return model.inputs.map((m) => {
    const shape = m.shape.map((d, i) => (d < 0 ? open(m.name, i) : d));
    const count = shape.reduce((n, d) => n * d, 1);
    total += count;
    if (total > limits.maxElements) {
      refuseModel(
        `input ${quote(m.name)} has the fixed shape ${showShape(m.shape)}: with the other inputs more than the ${limits.maxElements} elements a request may carry, so no request could run this model`,
      );
    }
    return m.datatype === 'BYTES'
      ? { name: m.name, datatype: m.datatype, shape, data: new Array<string>(count).fill('') }
      : { name: m.name, datatype: m.datatype, shape, data: new DATATYPE_INFO[m.datatype].array(count) };
  });
}

const PROBE = 'an uploaded model (probe)';

/**
 * Runs the probe once; out of memory, once more after the cached sessions are released. Still out of memory while
 * other sessions are alive: MemoryBusyError (503) — the memory is taken, not too small. Else the ModelRunError
 * (the model's verdict at this bound).
 */
async function probeRun(model: LoadedModel, inputs: Tensor[]): Promise<Tensor[]> {
  try {
    return await runSession(model, inputs, [], PROBE);
  } catch (e) {
    if (!(e instanceof ModelRunError && e.outOfMemory)) throw e;
  }
  await releaseHeldSessions(model.session);
  try {
    return await runSession(model, inputs, [], PROBE);
  } catch (e) {
    if (e instanceof ModelRunError && e.outOfMemory) {
      const error = outOfMemory('running the uploaded model once', 1, e.message);
      if (error instanceof MemoryBusyError) throw error;
    }
    throw e;
  }
}
const GENERATED = 'inputs built from its metadata (dynamic dimensions 1, zeros)';

/**
 * Runs `model` once and says how it went. With `warmup`: on those inputs, and a failure is a 400 (TensorError when
 * the warm-up does not fit the model, ModelLoadError when the model fails on it or answers too much). Without: on
 * generated inputs (probeInputs, then the second try), and a failure is the verdict `{ok: false}` — except the
 * refusals that hold for any input (the module comment): ModelLoadError.
 */
export async function probeModel(
  model: LoadedModel,
  limits: ProbeLimits,
  warmup?: readonly WarmupInput[],
): Promise<ProbeVerdict> {
  if (warmup) {
    const { tensors, shown } = warmupInputs(model, warmup, limits);
    let outputs: Tensor[];
    try {
      outputs = await probeRun(model, tensors);
    } catch (e) {
      if (e instanceof ModelRunError) refuseModel(`the model failed on the warm-up inputs (${shown}): ${e.message}`);
      throw e;
    }
    checkOutputSize(outputs, limits.maxElements, 'on the warm-up inputs');
    return { ok: true, inputs: 'warmup', shapes: shown };
  }
  const first = probeInputs(model, limits);
  const shown = showWarmup(first);
  let reason: string;
  try {
    const outputs = await probeRun(model, first);
    checkOutputSize(outputs, limits.maxElements, 'on inputs of batch 1');
    return { ok: true, inputs: 'generated', shapes: shown };
  } catch (e) {
    if (!(e instanceof ModelRunError)) throw e;
    if (e.outOfMemory) refuseModel(`the model loads but cannot run on ${GENERATED}: ${e.message}`);
    reason = e.message;
  }
  const second = model.inputs.some((m) => m.shape.some((d) => d < 0)) ? secondTry(model, limits) : undefined;
  if (second) {
    try {
      const outputs = await runSession(model, second, [], PROBE);
      if (fits(outputs, limits.maxElements)) return { ok: true, inputs: 'generated', shapes: showWarmup(second) };
    } catch (e) {
      if (!(e instanceof ModelRunError)) throw e;
    }
  }
  return { ok: false, inputs: 'generated', shapes: shown, error: reason };
}

/** The second try's inputs, unless they would not fit a request either. */
function secondTry(model: LoadedModel, limits: ProbeLimits): Tensor[] | undefined {
  try {
    return probeInputs(model, limits, PROBE_LENGTH);
  } catch {
    return undefined;
  }
}

const fits = (outputs: Tensor[], maxElements: number) => outputs.reduce((n, t) => n + t.data.length, 0) <= maxElements;

/** 400 when outputs add up to more elements than a response may carry. */
export function checkOutputSize(outputs: Tensor[], maxElements: number, when = ''): void {
  let total = 0;
  for (const t of outputs) {
    total += t.data.length;
    if (total > maxElements) {
      refuseModel(
        `the model's output ${quote(t.name)} has shape ${showShape(t.shape)}${when ? ` ${when}` : ''}: the outputs add up to more than the ${maxElements} elements a response may carry`,
      );
    }
  }
}
