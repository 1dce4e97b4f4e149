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
    for (const x of new Set(namesRead(n))) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  }
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const declared = new Map<string, number>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    const dims = v.type?.tensorType?.shape?.dim;
    if (v.name && dims) declared.set(v.name, dims.length);
  }
  for (const [name, t] of initializers) declared.set(name, t.dims?.length ?? 0);
  const memo = new Map<string, number | undefined>();
  const rank = (tensor: string): number | undefined => {
    if (declared.has(tensor)) return declared.get(tensor);
    if (memo.has(tensor)) return memo.get(tensor);
    memo.set(tensor, undefined); // a cycle (invalid graph) ends as unknown
    const n = producer.get(tensor);
    let r: number | undefined;
    if (n) {
      const op = n.opType ?? '';
      const inputs = (n.input ?? []).filter((x) => x);
      if (op === 'Gemm' || op === 'Flatten') r = 2;
      else if (op === 'Reshape') r = initializers.get(inputs[1] ?? '')?.dims?.map(Number)[0];
      else if (SAME_RANK.has(op) && n.output?.[0] === tensor) r = rank(inputs[0] ?? '');
      else if (BROADCAST.has(op) || op === 'MatMul' || op === 'Concat') {
        const rs = inputs.map(rank);
        if (rs.every((x) => x !== undefined)) r = Math.max(...(rs as number[]));
      }
    }
    memo.set(tensor, r);
    return r;
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
