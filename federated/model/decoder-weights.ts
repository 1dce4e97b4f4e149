/**
 * The float weights of a decoder Fedge exported (decoder-export.ts), read from its ONNX bytes and written back into
 * them: what a federated task on a served language model merges its adapters into each round (issue 33).
 *  - readDecoderWeights: the `fedge.spec` metadata (a decoder spec) and every parameter of it in the spec's order
 *    (GPT-2's names), as the graph computes them: a float32 initializer as it is, an int8 one dequantized as
 *    DequantizeLinear does ((q − zero point) · scale per output channel; the tied `wte` per token row).
 *  - writeDecoderWeights: the same bytes with some of those weights replaced — a float32 initializer rewritten, an
 *    int8 one quantized again symmetric per channel along the axis the base's DequantizeLinear names (its int8 data
 *    and scales change, its zero point stays 0) — and every other byte (graph, I/O names, the tokenizer and
 *    generation config in the metadata) copied (head/wire.ts).
 * A decoder without `fedge.spec` (a third-party export) is refused: its weights have other names and layouts, and
 * Fedge would have to guess which matrix is which. Pure.
 */
import { i8, u8 } from '../bytes.ts';
import { type DecoderSpec, decoderParameterShapes, isDecoderSpec, parseDecoderSpec } from './decoder-spec.ts';
import { HeadError } from './head/head-error.ts';
import { type TensorData, replaceInitializerData } from './head/wire.ts';
import type { NamedWeight } from './model-spec.ts';
import { ModelSpecError } from './model-spec.ts';
import { ElemType, type GraphProto, type TensorProto, decodeModel, floatValues } from './onnx-graph.ts';
import { OnnxFormatError } from './onnx-format-error.ts';
import { readMetadataProps } from './onnx-metadata.ts';
import { quantizeWeights } from './quantize.ts';

export class DecoderWeightsError extends Error {
  override name = 'DecoderWeightsError';
}

/** Where one parameter's values live in the graph: a float32 initializer, or int8 data behind a DequantizeLinear. */
type Storage =
  | { kind: 'float'; name: string; dims: number[] }
  | { kind: 'int8'; data: string; scale: string; zeroPoint?: string; axis: number | null; dims: number[] };

interface DecoderGraph {
  spec: DecoderSpec;
  initializers: Map<string, TensorProto>;
  storage: Map<string, Storage>;
}

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** The decoder spec in `fedge.spec`, or why there is none a task could train. */
function specOf(onnx: Uint8Array): DecoderSpec {
  let props: Record<string, string>;
  try {
    props = readMetadataProps(onnx);
  } catch (e) {
    if (e instanceof OnnxFormatError) throw new DecoderWeightsError(e.message);
    throw e;
  }
  const text = props['fedge.spec'];
  if (text === undefined)
    throw new DecoderWeightsError(
      "the model has no fedge.spec metadata: it is not a decoder Fedge exported (a third-party decoder's weights have other names and layouts; Fedge fine-tunes the decoders it exports, such as fedge-gpt)",
    );
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DecoderWeightsError('its fedge.spec metadata is not JSON');
  }
  if (!isDecoderSpec(value))
    throw new DecoderWeightsError(
      'its fedge.spec is not a decoder spec (kind "decoder"): it is not a language model Fedge exported',
    );
  try {
    return parseDecoderSpec(value);
  } catch (e) {
    if (e instanceof ModelSpecError) throw new DecoderWeightsError(e.message);
    throw e;
  }
}

function integerInitializer(t: TensorProto): Int8Array {
  const n = size((t.dims ?? []).map(Number));
  const values = t.rawData?.length ? i8(t.rawData.slice()) : Int8Array.from(t.int32Data ?? []);
  if (values.length !== n)
    throw new DecoderWeightsError(
      `initializer '${t.name}' holds ${values.length} values for [${(t.dims ?? []).map(Number)}]`,
    );
  return values;
}

function indexDecoder(onnx: Uint8Array): DecoderGraph {
  const spec = specOf(onnx);
  let graph: GraphProto;
  try {
    graph = decodeModel(onnx).graph!;
  } catch (e) {
    if (e instanceof OnnxFormatError) throw new DecoderWeightsError(e.message);
    throw e;
  }
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const dequantized = new Map(
    (graph.node ?? []).filter((n) => n.opType === 'DequantizeLinear').map((n) => [n.output?.[0] ?? '', n]),
  );
  const storage = new Map<string, Storage>();
  for (const { name, shape } of decoderParameterShapes(spec)) {
    const t = initializers.get(name);
    const node = dequantized.get(name);
    const where = `weight '${name}'`;
    if (t) {
      if (t.dataType !== ElemType.FLOAT)
        throw new DecoderWeightsError(`${where} is data type ${t.dataType}, not float32`);
      storage.set(name, { kind: 'float', name, dims: (t.dims ?? []).map(Number) });
    } else if (node) {
      const [data, scale, zeroPoint] = [node.input?.[0] ?? '', node.input?.[1] ?? '', node.input?.[2] || undefined];
      const q = initializers.get(data);
      const s = initializers.get(scale);
      if (!q || !s || (zeroPoint !== undefined && !initializers.has(zeroPoint)))
        throw new DecoderWeightsError(`${where}: its DequantizeLinear reads a tensor that is not an initializer`);
      if (q.dataType !== ElemType.INT8)
        throw new DecoderWeightsError(`${where} is dequantized from data type ${q.dataType}; Fedge reads int8 weights`);
      if ((node.attribute ?? []).some((a) => a.name === 'block_size'))
        throw new DecoderWeightsError(`${where} uses blocked quantization, which Fedge does not write`);
      const dims = (q.dims ?? []).map(Number);
      const scales = size((s.dims ?? []).map(Number));
      let axis: number | null = null;
      if (scales !== 1) {
        const a = Number((node.attribute ?? []).find((x) => x.name === 'axis')?.i ?? 1);
        axis = a < 0 ? a + dims.length : a;
        if (dims[axis] !== scales)
          throw new DecoderWeightsError(`${where}: ${scales} scales for axis ${axis} of [${dims}]`);
      }
      storage.set(name, { kind: 'int8', data, scale, ...(zeroPoint && { zeroPoint }), axis, dims });
    } else throw new DecoderWeightsError(`the graph has no ${where} (an initializer, or one DequantizeLinear makes)`);
    const dims = storage.get(name)!.dims;
    if (dims.length !== shape.length || dims.some((n, i) => n !== shape[i]))
      throw new DecoderWeightsError(`${where} is [${dims}] in the graph, the spec says [${shape}]`);
  }
  return { spec, initializers, storage };
}

function values(g: DecoderGraph, name: string): Float32Array {
  const s = g.storage.get(name)!;
  if (s.kind === 'float') return floatValues(g.initializers.get(s.name)!);
  const q = integerInitializer(g.initializers.get(s.data)!);
  const scales = floatValues(g.initializers.get(s.scale)!);
  const zero = s.zeroPoint ? integerInitializer(g.initializers.get(s.zeroPoint)!) : new Int8Array(scales.length);
  const inner = s.axis === null ? q.length : size(s.dims.slice(s.axis + 1));
  const out = new Float32Array(q.length);
  // As DequantizeLinear computes it: float(q − zero point) · scale, in float32.
  for (let i = 0; i < q.length; i++) {
    const c = s.axis === null ? 0 : Math.floor(i / inner) % scales.length;
    out[i] = Math.fround((q[i]! - zero[c]!) * scales[c]!);
  }
  return out;
}

/** The spec and float weights (the spec's order and shapes) of a decoder Fedge exported; DecoderWeightsError if not one. */
export function readDecoderWeights(onnx: Uint8Array): { spec: DecoderSpec; weights: NamedWeight[] } {
  const g = indexDecoder(onnx);
  const weights = decoderParameterShapes(g.spec).map(({ name, shape }) => ({ name, shape, values: values(g, name) }));
  return { spec: g.spec, weights };
}

/**
 * `onnx` with the weights in `updated` (by spec name, the spec's shapes) replaced; every other byte as it was. Int8
 * weights are quantized again as the base stored them: symmetric, per channel along the same axis.
 */
export function writeDecoderWeights(onnx: Uint8Array, updated: ReadonlyMap<string, Float32Array>): Uint8Array {
  const g = indexDecoder(onnx);
  const replacements = new Map<string, TensorData>();
  for (const [name, v] of updated) {
    const s = g.storage.get(name);
    if (!s) throw new DecoderWeightsError(`the decoder has no weight '${name}'`);
    if (v.length !== size(s.dims))
      throw new DecoderWeightsError(`weight '${name}' has ${size(s.dims)} values, got ${v.length}`);
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new DecoderWeightsError(`weight '${name}' value ${bad} is ${v[bad]}; weights must be finite`);
    if (s.kind === 'float') {
      replacements.set(name, { dataType: ElemType.FLOAT, bytes: u8(Float32Array.from(v)) });
      continue;
    }
    if (s.zeroPoint && integerInitializer(g.initializers.get(s.zeroPoint)!).some((z) => z !== 0))
      throw new DecoderWeightsError(
        `weight '${name}': its zero point is not 0; Fedge writes symmetric int8 weights only`,
      );
    const { q, scales } = quantizeWeights(v, s.dims, s.axis);
    replacements.set(s.data, { dataType: ElemType.INT8, bytes: u8(q) });
    replacements.set(s.scale, { dataType: ElemType.FLOAT, bytes: u8(scales) });
  }
  try {
    return replaceInitializerData(onnx, replacements);
  } catch (e) {
    if (e instanceof HeadError) throw new DecoderWeightsError(e.message);
    throw e;
  }
}
