/**
 * Dynamic batching (Triton's dynamic batcher, docs/user_guide/model_configuration.md "Dynamic Batcher"): requests
 * for the same model version that wait while its session is busy, and whose inputs concatenate along the batch
 * dimension, run as one ORT call; each gets its rows of the outputs back. Pure: shapes and typed arrays only.
 *
 * A request is batchable when every model input and output has an open first dimension (the batch), every input
 * it sends is numeric, and all its inputs have the same first dimension n ≥ 1. Requests batch together when their
 * key matches: the same input names, datatypes and per-row shapes, and the same requested outputs.
 */
import type { TensorMeta } from '../registry/model-record.ts';
import type { Tensor } from './tensor-codec.ts';

/** The batch key of a request, or undefined when it cannot be batched with others. */
export function batchKey(
  model: { inputs: readonly TensorMeta[]; outputs: readonly TensorMeta[] },
  inputs: readonly Tensor[],
  outputNames: readonly string[],
): string | undefined {
  if (!model.inputs.length || !model.outputs.length) return undefined;
  if (!model.inputs.every((m) => m.shape[0] === -1) || !model.outputs.every((m) => m.shape[0] === -1)) return undefined;
  const n = inputs[0]?.shape[0];
  if (n === undefined || n < 1) return undefined;
  const parts: string[] = [];
  for (const t of [...inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (t.datatype === 'BYTES' || t.shape[0] !== n || Array.isArray(t.data)) return undefined;
    parts.push(`${t.name}:${t.datatype}:${t.shape.slice(1).join('x')}`);
  }
  return `${parts.join(';')}|${outputNames.join(',')}`;
}

/** Rows (first dimension) of a batchable request. */
export const rowsOf = (inputs: readonly Tensor[]): number => inputs[0]!.shape[0]!;

type Typed = Exclude<Tensor['data'], string[] | Uint8Array[]>;

/** The requests' inputs (same key) concatenated along the first dimension, input by input. */
export function concatInputs(requests: readonly (readonly Tensor[])[]): Tensor[] {
  const first = requests[0]!;
  return first.map((t) => {
    const parts = requests.map((r) => r.find((x) => x.name === t.name)!);
    const rows = parts.reduce((n, p) => n + p.shape[0]!, 0);
    const data = t.data as Typed;
    const Ctor = data.constructor as new (n: number) => Typed;
    const out = new Ctor(parts.reduce((n, p) => n + (p.data as Typed).length, 0));
    let offset = 0;
    for (const p of parts) {
      (out as unknown as { set(a: ArrayLike<number | bigint>, o: number): void }).set(
        p.data as ArrayLike<number | bigint>,
        offset,
      );
      offset += (p.data as Typed).length;
    }
    return { ...t, shape: [rows, ...t.shape.slice(1)], data: out } as Tensor;
  });
}

/**
 * Each request's rows of a batched run's outputs, in order; undefined when an output's first dimension is not the
 * batch's (a model whose outputs do not follow its inputs row by row: the caller runs the requests one by one).
 */
export function splitOutputs(outputs: readonly Tensor[], rows: readonly number[]): Tensor[][] | undefined {
  const total = rows.reduce((a, b) => a + b, 0);
  if (!outputs.every((o) => o.shape[0] === total && !Array.isArray(o.data))) return undefined;
  const result: Tensor[][] = rows.map(() => []);
  for (const o of outputs) {
    const data = o.data as Typed;
    const perRow = total ? data.length / total : 0;
    let start = 0;
    rows.forEach((n, i) => {
      const end = start + n * perRow;
      result[i]!.push({ ...o, shape: [n, ...o.shape.slice(1)], data: data.slice(start, end) } as Tensor);
      start = end;
    });
  }
  return result;
}
