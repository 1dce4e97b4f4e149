/**
 * Turns ONNX bytes into a ready session plus the OIP tensor metadata of its inputs and outputs.
 * Loading is the validation: bytes ORT cannot load, or I/O this server cannot speak, are refused (400). Running out
 * of the WASM heap is not a verdict on the bytes: the cached sessions are released and the load tried once more
 * (memory.ts); what still does not fit is a 503 while other sessions hold memory, else — the model alone needs more
 * than the bound — a 400 naming the bound at upload (it could never be served here) and a 507 for a stored model.
 */
import { refuseModel } from './errors.ts';
import type { TensorMeta } from '../registry/model-record.ts';
import type { Featurizer } from '../../federated/oip/model-records.ts';
import { FeaturizerError, readFeaturizers } from '../../federated/model/featurizers.ts';
import { OnnxFormatError } from '../../federated/model/onnx-format-error.ts';
import { readMetadataProps } from '../../federated/model/onnx-metadata.ts';
import { LanguageModelError } from '../../federated/generation/errors.ts';
import { type LanguageModel, carriesTokenizer, readLanguageModel } from '../../federated/generation/language-model.ts';
import { datatypeOfOrt } from '../../federated/oip/datatypes.ts';
import { MemoryBusyError, heapBound, isOutOfMemoryMessage, outOfMemory, releaseHeldSessions } from './memory.ts';
import { type ort, createSession } from './ort-runtime.ts';
import { quote } from './quote.ts';

export interface LoadedModel {
  session: ort.InferenceSession;
  inputs: TensorMeta[];
  outputs: TensorMeta[];
  /** A decoder that carries its tokenizer (federated/generation/language-model.ts): it can generate text. */
  language?: LanguageModel;
}

/**
 * One dimension as OIP reports it: its size when fixed, -1 when open — the same shapes onnxruntime-node reports
 * with its strings turned into -1. onnxruntime-node gives a symbolic dimension as its dim_param name and one with
 * neither dim_value nor dim_param as "". ORT-web gives the name too, but reads the other kind's size (int64 -1 in
 * ORT's C API) through a 32-bit pointer field, so it arrives as 4294967295 (any negative int64 as 2^32 - k).
 * Normalised here rather than re-read from the ONNX graph: decoding the protobuf a second time would cost the
 * Worker a copy of the model's bytes, and ORT's own view (initializers dropped from the inputs, IR < 4) is the one
 * that decides what a run accepts. No real dimension reaches 2^31 in a 32-bit WebAssembly heap.
 */
export function oipDim(d: number | string): number {
  return typeof d === 'number' && Number.isSafeInteger(d) && d >= 0 && d < 2 ** 31 ? d : -1;
}

function describe(list: readonly ort.InferenceSession.ValueMetadata[], what: string): TensorMeta[] {
  return list.map((m) => {
    if (!m.isTensor)
      refuseModel(`${what} ${quote(m.name)} is not a tensor; only tensor inputs and outputs can be served`);
    const datatype = datatypeOfOrt(m.type);
    if (!datatype)
      refuseModel(
        `${what} ${quote(m.name)} has element type ${m.type}, which Open Inference Protocol v2 here does not serve`,
      );
    return { name: m.name, datatype, shape: m.shape.map(oipDim) };
  });
}

/** The featurizers the model's metadata declares (featurizers.ts); a declaration that does not fit is a 400. */
function declaredFeaturizers(bytes: Uint8Array, inputs: TensorMeta[]): Record<string, Featurizer> {
  try {
    return readFeaturizers(bytes, inputs);
  } catch (e) {
    if (e instanceof FeaturizerError || e instanceof OnnxFormatError) refuseModel(e.message);
    throw e;
  }
}

/**
 * The class names a model declares (`fedge.labels`, written by onnx-export.ts), on the output they name: the spec's
 * output when `fedge.spec` says which, else the one output whose last axis has as many entries. A declaration that
 * does not fit is left out (labels are a description, not a contract worth refusing a model over).
 */
function declaredLabels(bytes: Uint8Array, outputs: TensorMeta[]): TensorMeta[] {
  let labels: unknown, named: unknown;
  try {
    const props = readMetadataProps(bytes);
    if (!props['fedge.labels']) return outputs;
    labels = JSON.parse(props['fedge.labels']);
    named = props['fedge.spec'] ? (JSON.parse(props['fedge.spec']) as { outputName?: unknown }).outputName : undefined;
  } catch {
    return outputs;
  }
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) return outputs;
  const fits = (m: TensorMeta) => m.shape.at(-1) === labels.length;
  const target =
    typeof named === 'string'
      ? outputs.find((m) => m.name === named && fits(m))
      : outputs.filter(fits).length === 1
        ? outputs.find(fits)
        : undefined;
  return outputs.map((m) => (m === target ? { ...m, labels: labels as string[] } : m));
}

/**
 * The language model a file declares by carrying a tokenizer.json: it must then be a decoder with a key/value cache
 * whose logits cover the tokenizer's ids (language-model.ts), or the upload is refused with the reason.
 */
function declaredLanguageModel(
  bytes: Uint8Array,
  inputs: TensorMeta[],
  outputs: TensorMeta[],
): LanguageModel | undefined {
  const props = readMetadataProps(bytes);
  if (!carriesTokenizer(props)) return undefined;
  try {
    return readLanguageModel(props, inputs, outputs);
  } catch (e) {
    if (e instanceof LanguageModelError) refuseModel(`a language model that cannot generate: ${e.message}`);
    throw e;
  }
}

const reasonOf = (e: unknown) =>
  String((e as Error)?.message ?? e)
    .replace(/\s+/g, ' ')
    .slice(0, 300);

/** A session for `bytes`; out of memory, once more after the cached sessions are released (the module comment). */
async function createWithin(bytes: Uint8Array, stored: boolean): Promise<ort.InferenceSession> {
  try {
    return await createSession(bytes);
  } catch (e) {
    if (!isOutOfMemoryMessage(reasonOf(e))) refuseModel(`not a loadable ONNX model: ${reasonOf(e)}`);
  }
  await releaseHeldSessions();
  try {
    return await createSession(bytes);
  } catch (e) {
    const reason = reasonOf(e);
    if (!isOutOfMemoryMessage(reason)) refuseModel(`not a loadable ONNX model: ${reason}`);
    const error = outOfMemory('loading the model', 0, reason);
    if (stored || error instanceof MemoryBusyError) throw error;
    refuseModel(`the model needs more than ${heapBound()} to load, even with no other model loaded: ${reason}`);
  }
}

/**
 * Loads `bytes`. `stored`: a version already in the catalog (the session cache), whose load out of memory alone is a
 * 507; otherwise bytes being published (an upload, a task's round), for which it is a refusal (400).
 */
export async function loadModel(bytes: Uint8Array, { stored = false } = {}): Promise<LoadedModel> {
  if (bytes.byteLength === 0) refuseModel('model body is empty; send the ONNX file as application/octet-stream');
  const session = await createWithin(bytes, stored);
  try {
    const inputs = describe(session.inputMetadata, 'input');
    const featurizers = declaredFeaturizers(bytes, inputs);
    const outputs = declaredLabels(bytes, describe(session.outputMetadata, 'output'));
    const language = declaredLanguageModel(bytes, inputs, outputs);
    return {
      session,
      inputs: inputs.map((m) => (featurizers[m.name] ? { ...m, featurizer: featurizers[m.name] } : m)),
      outputs,
      ...(language && { language }),
    };
  } catch (e) {
    await session.release();
    throw e;
  }
}
