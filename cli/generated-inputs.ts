/**
 * Inputs for comparing two versions of a model without its data: for each graph input (not an initializer), a batch
 * of seeded random values of its element type — open dimensions set to `batch` (first) or 1 unless `--shape`
 * names them, values fixed where `--value` gives them — or the caller's own values from a JSON file (`--inputs`,
 * OIP request form or `{name: {shape, data}}`).
 */
import { ElemType, type ModelProto } from '../federated/model/onnx-graph.ts';
import { seededRandom } from '../federated/seeded-random.ts';
import type * as ort from 'onnxruntime-web';
import { UsageError } from './usage-error.ts';

export interface GeneratedInput {
  name: string;
  type: ort.Tensor.Type;
  dims: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;
}

interface GraphInput {
  name: string;
  elemType: number;
  /** Fixed sizes, or null where the model leaves the dimension open. */
  dims: (number | null)[];
}

function graphInputs(model: ModelProto): GraphInput[] {
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? [])
    .filter((i) => !initializers.has(i.name))
    .map((input) => {
      const tensor = input.type?.tensorType;
      if (!tensor) throw new Error(`input '${input.name}' is not a tensor; cannot make values for it`);
      return {
        name: input.name!,
        elemType: tensor.elemType ?? 0,
        dims: (tensor.shape?.dim ?? []).map((d) =>
          d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null,
        ),
      };
    });
}

/** `name=n1,n2,…` options → numbers by input name: `--shape audio=1,16000` (sizes), `--value sr=16000` (values). */
function parseNamedLists(
  flag: string,
  args: string[],
  isItem: (v: number) => boolean,
  example: string,
): Map<string, number[]> {
  const lists = new Map<string, number[]>();
  for (const a of args) {
    const m = /^([^=]+)=([^,]+(?:,[^,]+)*)$/.exec(a);
    const items = m?.[2]?.split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));
    if (!m || !items?.every(isItem)) throw new UsageError(`${flag} takes ${example}, got '${a}'`);
    lists.set(m[1]!, items);
  }
  return lists;
}

/** `--shape name=1,16000` options → sizes by input name. */
export const parseShapes = (args: string[]) =>
  parseNamedLists('--shape', args, (d) => Number.isSafeInteger(d) && d >= 0, 'name=d1,d2,… (e.g. audio=1,16000)');

/** `--value name=v` or `name=v1,v2,…` options → the values to feed that input (one value fills it). */
export const parseValues = (args: string[]) =>
  parseNamedLists('--value', args, Number.isFinite, 'name=v or name=v1,v2,… (e.g. sr=16000)');

function checkShape(input: GraphInput, dims: number[], where: string): void {
  const fits =
    dims.length === input.dims.length &&
    input.dims.every((d, i) => d === null || d === dims[i]) &&
    dims.every((d) => Number.isSafeInteger(d) && d >= 0);
  if (!fits)
    throw new UsageError(
      `${where}: shape [${dims}] does not fit input '${input.name}' [${input.dims.map((d) => d ?? '?')}]`,
    );
}

function valuesOf(input: GraphInput, dims: number[], value: (i: number) => number): GeneratedInput {
  const n = dims.reduce((a, b) => a * b, 1);
  const { name } = input;
  switch (input.elemType) {
    case ElemType.FLOAT:
      return { name, type: 'float32', dims, data: Float32Array.from({ length: n }, (_, i) => value(i)) };
    case ElemType.DOUBLE:
      return { name, type: 'float64', dims, data: Float64Array.from({ length: n }, (_, i) => value(i)) };
    case ElemType.INT32:
      return { name, type: 'int32', dims, data: Int32Array.from({ length: n }, (_, i) => value(i)) };
    case ElemType.INT64:
      return {
        name,
        type: 'int64',
        dims,
        data: BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(value(i)))),
      };
    case ElemType.UINT8:
      return { name, type: 'uint8', dims, data: Uint8Array.from({ length: n }, (_, i) => value(i)) };
    case ElemType.INT8:
      return { name, type: 'int8', dims, data: Int8Array.from({ length: n }, (_, i) => value(i)) };
    case ElemType.BOOL:
      return { name, type: 'bool', dims, data: Uint8Array.from({ length: n }, (_, i) => (value(i) ? 1 : 0)) };
    default:
      throw new Error(`input '${name}' has element type ${input.elemType}; cannot make values for it`);
  }
}

/**
 * Seeded values for every input; `shapes` sizes inputs (`--shape`), `values` fixes an input's values (`--value`:
 * one value fills the input, or one per element) — for inputs that select a mode, like a sample rate.
 */
export function generatedInputs(
  model: ModelProto,
  batch: number,
  shapes: Map<string, number[]> = new Map(),
  seed = 1,
  values: Map<string, number[]> = new Map(),
): GeneratedInput[] {
  const rand = seededRandom(seed);
  const inputs = graphInputs(model);
  for (const [flag, map] of [
    ['--shape', shapes],
    ['--value', values],
  ] as const) {
    for (const name of map.keys()) {
      if (!inputs.some((i) => i.name === name))
        throw new UsageError(
          `${flag} names '${name}', but the model's inputs are ${inputs.map((i) => `'${i.name}'`).join(', ')}`,
        );
    }
  }
  return inputs.map((input) => {
    const given = shapes.get(input.name);
    if (given) checkShape(input, given, '--shape');
    const dims = given ?? input.dims.map((d, i) => d ?? (i === 0 ? batch : 1));
    const fixed = values.get(input.name);
    if (fixed) {
      const n = dims.reduce((a, b) => a * b, 1);
      if (fixed.length !== 1 && fixed.length !== n)
        throw new UsageError(
          `--value gives ${fixed.length} values for input '${input.name}' of shape [${dims}]: give 1 (it fills the input) or ${n}`,
        );
      return valuesOf(input, dims, (i) => fixed[fixed.length === 1 ? 0 : i]!);
    }
    // Values in [0, 1) for floats: the range of normalised pixels and of hashed text features; small integers.
    const float = input.elemType === ElemType.FLOAT || input.elemType === ElemType.DOUBLE;
    return valuesOf(
      input,
      dims,
      float
        ? () => rand()
        : input.elemType === ElemType.BOOL
          ? () => Number(rand() < 0.5)
          : () => Math.floor(rand() * 10),
    );
  });
}

/** The caller's inputs from JSON: `{"inputs": [{name, shape, data}]}` (an OIP request) or `{"name": {shape, data}}`. */
export function givenInputs(model: ModelProto, text: string, file: string): GeneratedInput[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not JSON: ${(e as Error).message}`);
  }
  const entries = new Map<string, { shape: unknown; data: unknown }>();
  if (json && typeof json === 'object' && Array.isArray((json as { inputs?: unknown }).inputs)) {
    for (const t of (json as { inputs: { name?: unknown; shape?: unknown; data?: unknown }[] }).inputs)
      entries.set(String(t.name), { shape: t.shape, data: t.data });
  } else if (json && typeof json === 'object') {
    for (const [name, t] of Object.entries(json as Record<string, { shape?: unknown; data?: unknown }>))
      entries.set(name, { shape: t?.shape, data: t?.data });
  } else throw new UsageError(`${file}: expected {"inputs": [{name, shape, data}]} or {"<input>": {shape, data}}`);
  return graphInputs(model).map((input) => {
    const t = entries.get(input.name);
    if (!t) throw new UsageError(`${file} has no values for input '${input.name}'`);
    if (!Array.isArray(t.shape) || !Array.isArray(t.data))
      throw new UsageError(`${file}: input '${input.name}' needs "shape" and "data" arrays`);
    const dims = t.shape.map(Number);
    checkShape(input, dims, file);
    const flat = (t.data as unknown[]).flat(Infinity);
    const n = dims.reduce((a, b) => a * b, 1);
    if (flat.length !== n || flat.some((v) => typeof v !== 'number' && typeof v !== 'boolean'))
      throw new UsageError(
        `${file}: input '${input.name}' of shape [${dims}] needs ${n} numbers, got ${flat.length} values`,
      );
    return valuesOf(input, dims, (i) => Number(flat[i]));
  });
}
