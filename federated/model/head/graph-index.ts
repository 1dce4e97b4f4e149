/**
 * Read-only lookups over a decoded ONNX graph for head detection: which node produces and which nodes consume a
 * tensor (subgraphs of If/Loop/Scan count as consumers of the outer tensors they name), initializers, attributes,
 * and the rank of a tensor where the graph says or implies it.
 */
import type { GraphProto, NodeProto, TensorProto } from '../onnx-graph.ts';
import type { NodeRef } from './head-error.ts';

export interface GraphIndex {
  graph: GraphProto;
  opset: number;
  producer: Map<string, NodeProto>;
  /** Nodes reading a tensor; a node holding a subgraph that names the tensor counts once. */
  consumers: Map<string, NodeProto[]>;
  initializers: Map<string, TensorProto>;
  outputs: Set<string>;
  rank(tensor: string): number | undefined;
}

/** Every tensor name a node reads, its subgraphs' references included. */
export function namesRead(n: NodeProto): string[] {
  const names = (n.input ?? []).filter((x) => x);
  for (const a of n.attribute ?? []) {
    for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
      for (const inner of g.node ?? []) names.push(...namesRead(inner));
    }
  }
  return names;
}

export function nodeRef(n: NodeProto): NodeRef {
  return {
    opType: n.opType ?? '?',
    name: n.name || `${n.opType}(${n.output?.[0] ?? ''})`,
    output: n.output?.[0] ?? '',
  };
}

/** "Conv 'conv3'" */
export const describe = (n: NodeProto) => `${n.opType} '${nodeRef(n).name}'`;

export function intAttr(n: NodeProto, name: string, dflt: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a && a.i !== undefined && a.i !== null ? Number(a.i) : dflt;
}

export function floatAttr(n: NodeProto, name: string, dflt: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a && a.f !== undefined && a.f !== null ? a.f : dflt;
}

export function intsAttr(n: NodeProto, name: string): number[] | undefined {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.ints ? a.ints.map(Number) : undefined;
}

export const hasAttr = (n: NodeProto, name: string) => (n.attribute ?? []).some((a) => a.name === name);

const SAME_RANK = new Set([
  'Relu',
  'Sigmoid',
  'Tanh',
  'LeakyRelu',
  'Elu',
  'Selu',
  'Gelu',
  'Softplus',
  'HardSigmoid',
  'Clip',
  'Identity',
  'Dropout',
  'Softmax',
  'LogSoftmax',
  'BatchNormalization',
  'Cast',
  'Conv',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Transpose',
  'Neg',
  'Abs',
  'Sqrt',
  'Exp',
  'DequantizeLinear',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min']);

export function indexGraph(graph: GraphProto, opset: number): GraphIndex {
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of graph.node ?? []) {
    for (const o of n.output ?? []) if (o) producer.set(o, n);
    for (const x of new Set(namesRead(n))) {
      const list = consumers.get(x);
      if (list) list.push(n);
      else consumers.set(x, [n]);
    }
  }
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const declared = new Map<string, number>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    const dims = v.type?.tensorType?.shape?.dim;
    if (v.name && dims) declared.set(v.name, dims.length);
  }
  for (const [name, t] of initializers) declared.set(name, t.dims?.length ?? 0);
  // Ranks inferred so far; PENDING while a tensor's inputs are being inferred (met again: a cycle, rank unknown).
  const PENDING = -1;
  const memo = new Map<string, number | undefined>();
  const known = (t: string): number | undefined => {
    const r = declared.has(t) ? declared.get(t) : memo.get(t);
    return r === PENDING ? undefined : r;
  };
  /** The tensors whose ranks `tensor`'s follows from. */
  const sources = (tensor: string): string[] => {
    const n = producer.get(tensor);
    const op = n?.opType ?? '';
    const inputs = (n?.input ?? []).filter((x) => x);
    if (SAME_RANK.has(op) && n?.output?.[0] === tensor) return inputs.slice(0, 1);
    if (BROADCAST.has(op) || op === 'MatMul' || op === 'Concat') return inputs;
    return [];
  };
  const infer = (tensor: string): number | undefined => {
    const n = producer.get(tensor);
    if (!n) return undefined;
    const op = n.opType ?? '';
    const inputs = (n.input ?? []).filter((x) => x);
    if (op === 'Gemm' || op === 'Flatten') return 2;
    if (op === 'Reshape') return initializers.get(inputs[1] ?? '')?.dims?.map(Number)[0];
    const rs = sources(tensor).map(known);
    if (rs.length === 0 || rs.some((x) => x === undefined)) return undefined;
    return Math.max(...(rs as number[]));
  };
  // Iterative depth-first inference with an explicit stack: a chain of 20,000 nodes must not overflow the call stack.
  const rank = (tensor: string): number | undefined => {
    const stack = [tensor];
    while (stack.length) {
      const t = stack[stack.length - 1]!;
      if (declared.has(t) || (memo.has(t) && memo.get(t) !== PENDING)) {
        stack.pop();
        continue;
      }
      if (!memo.has(t)) {
        memo.set(t, PENDING);
        const todo = sources(t).filter((x) => !declared.has(x) && !memo.has(x));
        if (todo.length) {
          stack.push(...todo);
          continue;
        }
      }
      memo.set(t, infer(t));
      stack.pop();
    }
    return known(tensor);
  };
  return {
    graph,
    opset,
    producer,
    consumers,
    initializers,
    outputs: new Set((graph.output ?? []).map((o) => o.name ?? '')),
    rank,
  };
}
