/**
 * Which node inputs are weights int8 may store, and along which axis each has its output channels (the axis of
 * per-channel scales). Any axis is correct for weight-only int8 — DequantizeLinear rebuilds the whole tensor — the
 * output-channel axis is the one that keeps rows of different magnitude from sharing one scale.
 */
import type { NodeProto } from '../onnx-graph.ts';

export const intAttr = (n: NodeProto, name: string, dflt: number) => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i ?? dflt) : dflt;
};
export const floatAttr = (n: NodeProto, name: string, dflt: number) =>
  n.attribute?.find((x) => x.name === name)?.f ?? dflt;

/** Channel axis of a weight in input `input` of `n`, given the weight's rank; null = per tensor. */
type AxisRule = (n: NodeProto, rank: number) => number | null;

/**
 * LSTM/GRU/RNN: W is [directions, gates·hidden, input] and R [directions, gates·hidden, hidden]; axis 1 gives
 * every gate row of every unit its own scale — the rows are separate output channels (like Gemm's transB rows), and
 * the gates (input, forget, cell, output) are trained to different magnitudes, which one scale per tensor would
 * crush onto the largest. B (input 3) stays fp32: it is small and added after the products.
 */
const recurrent: Record<number, AxisRule> = { 1: () => 1, 2: () => 1 };

const RULES: Record<string, Record<number, AxisRule>> = {
  // A [.., M, K] · B [.., K, N]: B's channels are its columns (last axis), A's are its rows (second to last).
  MatMul: { 0: (_, rank) => (rank >= 2 ? rank - 2 : null), 1: (_, rank) => (rank >= 2 ? rank - 1 : null) },
  // Y = op(A) · op(B): rows of op(A) and columns of op(B) are the output's axes.
  Gemm: { 0: (n) => (intAttr(n, 'transA', 0) ? 1 : 0), 1: (n) => (intAttr(n, 'transB', 0) ? 0 : 1) },
  Conv: { 1: () => 0 }, // [M, C/group, k…]: M output channels
  ConvTranspose: { 1: () => 1 }, // [C, M/group, k…]
  LSTM: recurrent,
  GRU: recurrent,
  RNN: recurrent,
  // An embedding table: one scale per gathered slice (a token's row for axis 0).
  Gather: {
    0: (n, rank) => {
      const a = intAttr(n, 'axis', 0);
      return a < 0 ? a + rank : a;
    },
  },
};

/** The ops (default domain) whose weights are quantized, for messages. */
export const WEIGHT_OPS = Object.keys(RULES);

/** The inputs of `n` that are weight inputs, or an empty list. */
export function weightInputs(n: NodeProto): number[] {
  if (n.domain && n.domain !== 'ai.onnx') return [];
  return Object.keys(RULES[n.opType ?? ''] ?? {}).map(Number);
}

/** The channel axis of the weight in input `input` of `n`, a tensor of rank `rank`. */
export function channelAxis(n: NodeProto, input: number, rank: number): number | null {
  const axis = RULES[n.opType!]![input]!(n, rank);
  return axis !== null && axis >= 0 && axis < rank ? axis : null;
}
