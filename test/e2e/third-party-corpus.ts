/**
 * The third-party ONNX corpus (test/fixtures/third-party/) as the e2e tests feed it: its files, onnxruntime-node's
 * metadata in OIP form, and deterministic inputs per file — one definition for third-party-models.test.ts (fp32)
 * and third-party-quantized.test.ts (int8), so both compare the server on exactly the same inputs.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { expect } from 'vitest';

export const dir = join(dirname(new URL(import.meta.url).pathname), '../fixtures/third-party');
export const corpus = readdirSync(dir)
  .filter((f) => f.endsWith('.onnx'))
  .sort();
export const ADMIN = { Authorization: 'Bearer dev-admin-token' }; // the local default in .dev.vars

/** onnxruntime-node's element types in OIP form (written out here, not imported, so the tests check the server's table). */
export const OIP: Record<string, string> = {
  float32: 'FP32',
  float16: 'FP16',
  float64: 'FP64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
};

/**
 * Inputs a model needs that are not "any values of any small size": silero's sample rate selects one of two If
 * branches (anything else is an error by design) and its STFT needs a 512-sample window at 16 kHz. v4 keeps its
 * LSTM state as `h` and `c`, v5 and v6 as one `state` [2, batch, 128].
 */
export const OVERRIDES: Record<string, Record<string, { shape: number[]; values?: number[] }>> = {
  'silero-vad.onnx': {
    sr: { shape: [], values: [16000] },
    input: { shape: [1, 512] },
    h: { shape: [2, 1, 64] },
    c: { shape: [2, 1, 64] },
  },
  'silero-vad-v5.onnx': {
    input: { shape: [1, 512] },
    state: { shape: [2, 1, 128] },
    sr: { shape: [], values: [16000] },
  },
  'silero-vad-v6.onnx': {
    input: { shape: [1, 512] },
    state: { shape: [2, 1, 128] },
    sr: { shape: [], values: [16000] },
  },
};

/**
 * The upload's `warmup` query for a file with OVERRIDES (`input:1x512,state:2x1x128,sr:=16000`): the same shapes and
 * fill values the inference below uses; undefined for the files that need none.
 */
export function warmupOf(file: string): string | undefined {
  const o = OVERRIDES[file];
  return (
    o &&
    Object.entries(o)
      .map(([name, { shape, values }]) => `${name}:${shape.join('x')}${values?.length === 1 ? `=${values[0]}` : ''}`)
      .join(',')
  );
}

/** PUT /v1/models/{name}/versions/{version} with the file's bytes, and `?warmup=` when given. */
export function uploadTo(
  url: string,
  name: string,
  version: string,
  bytes: Uint8Array,
  warmup?: string,
): Promise<Response> {
  const query = warmup === undefined ? '' : `?${new URLSearchParams({ warmup })}`;
  return fetch(`${url}/v1/models/${name}/versions/${version}${query}`, {
    method: 'PUT',
    headers: { ...ADMIN, 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
}
/** Every open dimension in the generated inputs; small, and not 1, so a batch of one cannot hide a broadcast bug. */
export const OPEN_DIM = 3;

export type Meta = { name: string; datatype: string; shape: number[] };
export type Feed = Meta & { data: number[] };

/** onnxruntime-node's metadata in OIP form: dim_param names and blank dims (its "") become -1. */
export function expectedMeta(list: readonly ortNode.InferenceSession.ValueMetadata[]): Meta[] {
  return list.map((m) => {
    if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
    return { name: m.name, datatype: OIP[m.type]!, shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) };
  });
}

/** Deterministic values (a fixed LCG per file and input): floats in [-1, 1), integers in [0, 10). */
export function feeds(file: string, inputs: Meta[]): Feed[] {
  return inputs.map((m, k) => {
    const o = OVERRIDES[file]?.[m.name];
    const shape = o?.shape ?? m.shape.map((d) => (d < 0 ? OPEN_DIM : d));
    const n = shape.reduce((a, b) => a * b, 1);
    let s = (k + 1) * 2654435761 + file.length;
    const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const data =
      o?.values ??
      Array.from({ length: n }, () =>
        m.datatype.startsWith('FP') ? Math.fround(next() * 2 - 1) : Math.floor(next() * 10),
      );
    return { name: m.name, datatype: m.datatype, shape, data };
  });
}

export function ortTensor(f: Feed): ortNode.Tensor {
  if (f.datatype === 'FP32') return new ortNode.Tensor('float32', Float32Array.from(f.data), f.shape);
  if (f.datatype === 'INT64')
    return new ortNode.Tensor(
      'int64',
      BigInt64Array.from(f.data, (v) => BigInt(v)),
      f.shape,
    );
  if (f.datatype === 'INT32') return new ortNode.Tensor('int32', Int32Array.from(f.data), f.shape);
  throw new Error(`no generator for ${f.datatype} (extend the test when the corpus gains one)`);
}

export type ServedOutput = { name: string; datatype: string; shape: number[]; data: (number | string | boolean)[] };

/**
 * For an uploaded file: the server's metadata must equal onnxruntime-node's for `ref`, and one inference on the
 * deterministic inputs must answer 200 with the same output names; gives the server's outputs and onnxruntime-node's.
 */
export async function servedAndReference(
  url: string,
  file: string,
  name: string,
  ref: ortNode.InferenceSession,
): Promise<{ served: ServedOutput[]; want: ortNode.InferenceSession.ReturnType }> {
  const [inputs, outputs] = [expectedMeta(ref.inputMetadata), expectedMeta(ref.outputMetadata)];
  const meta = (await (await fetch(`${url}/v2/models/${name}`)).json()) as { inputs: Meta[]; outputs: Meta[] };
  expect(meta.inputs).toEqual(inputs);
  expect(meta.outputs).toEqual(outputs);
  const feed = feeds(file, inputs);
  const want = await ref.run(Object.fromEntries(feed.map((f) => [f.name, ortTensor(f)])));
  const res = await fetch(`${url}/v2/models/${name}/infer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ inputs: feed }),
  });
  const body = (await res.json()) as { outputs: ServedOutput[] };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.outputs.map((o) => o.name).sort()).toEqual(outputs.map((o) => o.name).sort());
  return { served: body.outputs, want };
}
