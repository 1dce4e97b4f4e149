/**
 * Hand-built ONNX files for the one-reading tests (federated/model/onnx-canonical.ts): a small classifier with a
 * dense softmax head, the crafted file that hides a second graph behind field 1 with another wire type, and
 * models whose head data does not fit its shapes. Pure (no Node APIs), so the workerd tests use it too.
 */
import {
  ElemType,
  type GraphProto,
  encodeModel,
  floatTensor,
  int64Tensor,
  node,
  onnx,
  rawTensor,
  valueInfo,
} from '../../../federated/model/onnx-graph.ts';

const F = ElemType.FLOAT;

/** x [batch, 4] → MatMul W [4, 3] → Add b [3] → Softmax → probabilities [batch, 3]; W filled with `w`, b = [0, bias, 0]. */
export function headGraph(w: number, bias = 0, name = 'head'): GraphProto {
  return {
    name,
    node: [
      node('MatMul', ['x', 'W'], ['logits_mm'], {}, 'dense_mm'),
      node('Add', ['logits_mm', 'b'], ['logits'], {}, 'dense_add'),
      node('Softmax', ['logits'], ['probabilities'], { axis: -1 }, 'softmax'),
    ],
    initializer: [
      floatTensor('W', [4, 3], new Float32Array(12).fill(w)),
      floatTensor('b', [3], Float32Array.of(0, bias, 0)),
    ],
    input: [valueInfo('x', F, ['batch', 4])],
    output: [valueInfo('probabilities', F, ['batch', 3])],
  };
}

export const headModel = (w = 0.1, bias = 0) => encodeModel(headGraph(w, bias));

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
}

const cat = (...parts: (Uint8Array | number[])[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** `model` with one more field appended: number `no`, wire type 2, holding `payload`. */
export const withLengthDelimited = (model: Uint8Array, no: number, payload: Uint8Array) =>
  cat(model, varint((no << 3) | 2), varint(payload.length), payload);

/**
 * The issue's crafted file: the served graph (`w` 0.1), then field 1 — ModelProto.ir_version, a varint — with wire
 * type 2, whose bytes are a second ModelProto.graph field (`w` 5, bias 9). C++ protobuf (onnxruntime) skips a field of
 * another wire type as unknown and serves the first graph; a reader blind to wire types (protobufjs' generated
 * decode: `case 1: irVersion = int64()`) reads the length as ir_version, the payload as ModelProto fields, and so the
 * second graph: the one tasks would train and publish.
 */
export function hiddenGraphModel(): { bytes: Uint8Array; served: Uint8Array; hidden: GraphProto } {
  const served = headModel(0.1);
  const hidden = headGraph(5, 9, 'hidden');
  const hiddenBytes = onnx.GraphProto.encode(hidden).finish();
  const payload = cat(varint((7 << 3) | 2), varint(hiddenBytes.length), hiddenBytes);
  return { bytes: withLengthDelimited(served, 1, payload), served, hidden };
}

/** What a wire-type-blind reader makes of hiddenGraphModel's bytes: the served model with the payload's fields inline. */
export function wireBlindReading(): Uint8Array {
  const { served, hidden } = hiddenGraphModel();
  const hiddenBytes = onnx.GraphProto.encode(hidden).finish();
  return cat(served, varint((7 << 3) | 2), varint(hiddenBytes.length), hiddenBytes);
}

/** The head model with its graph's tensors and nodes changed by `edit` (for data that does not fit its shapes). */
export function editedHeadModel(edit: (g: GraphProto) => void): Uint8Array {
  const g = headGraph(0.1);
  edit(g);
  return encodeModel(g);
}

/** Head models whose head data or shapes a server must refuse with a reason, never crash on. */
export const HOSTILE_HEADS: [string, Uint8Array][] = [
  [
    'a weight whose raw data is not whole float32 values',
    editedHeadModel((g) => void (g.initializer![0]!.rawData = new Uint8Array(47))),
  ],
  [
    'a weight of dims [4, 2^31] holding 12 values',
    editedHeadModel((g) => void (g.initializer![0]!.dims = [4, 2 ** 31])),
  ],
  ['a weight of dims [0, 3]', editedHeadModel((g) => void (g.initializer![0]!.dims = [0, 3]))],
  ['a weight of dims [-4, -3]', editedHeadModel((g) => void (g.initializer![0]!.dims = [-4, -3]))],
  ['a bias of dims [0]', editedHeadModel((g) => void (g.initializer![1]!.dims = [0]))],
  [
    'a weight of float16 data',
    editedHeadModel((g) => void (g.initializer![0] = rawTensor('W', [4, 3], ElemType.FLOAT16, new Uint16Array(12)))),
  ],
  [
    'a Reshape after the head whose shape is 12 bytes',
    editedHeadModel((g) => {
      g.node![2]!.output = ['probs'];
      g.node!.push(node('Reshape', ['probs', 'shape'], ['probabilities'], {}, 'reshape'));
      g.initializer!.push({ ...int64Tensor('shape', [2], [-1, 3]), rawData: new Uint8Array(12) });
    }),
  ],
  ['labels metadata that is not JSON', encodeModel(headGraph(0.1), { metadata: { 'fedge.labels': '[' } })],
  ['a truncated file', headModel(0.1).subarray(0, 60)],
];
