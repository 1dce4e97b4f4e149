/**
 * headBody: the graph the device runs to embed its examples — the same model cut at the head's input. Its one output
 * is the embedding, [batch, features] float32, named `head.embedding.output` (also the head spec's inputName):
 * an Identity of the head's input tensor, or a Transpose of it when the head reads it as [features, batch].
 * The original outputs are replaced, and nodes and initializers the embedding does not need are dropped: the device
 * needs only the embedding, the head's weights reach it as the task's flat vector (not inside the body), and a
 * body cannot be mistaken for the served model. Inputs, opset, metadata and the kept nodes are unchanged, so the
 * device feeds the body exactly what the served model takes.
 */
import { ElemType, type NodeProto, node, onnx } from '../onnx-graph.ts';
import { type HeadPlace, readServedModel } from './detect.ts';
import { namesRead } from './graph-index.ts';
import { sameHeadIn } from './match.ts';

export function headBody(original: Uint8Array, head: HeadPlace): Uint8Array {
  const model = readServedModel(original);
  sameHeadIn(model, head);
  const graph = model.graph!;
  const { tensor, transposed, output, size } = head.embedding;
  const exposed = transposed
    ? node('Transpose', [tensor], [output], { perm: [1, 0] }, `${output}_transpose`)
    : node('Identity', [tensor], [output], {}, `${output}_identity`);

  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const keep = new Set<NodeProto>();
  const pending = [tensor];
  while (pending.length) {
    const p = producer.get(pending.pop()!);
    if (p && !keep.has(p)) {
      keep.add(p);
      pending.push(...namesRead(p));
    }
  }
  const nodes = [...(graph.node ?? []).filter((n) => keep.has(n)), exposed];
  const read = new Set(nodes.flatMap(namesRead));
  const dropped = new Set((graph.initializer ?? []).map((t) => t.name ?? '').filter((name) => !read.has(name)));
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));

  const outputDims = graph.output?.find((o) => o.name === head.output.name)?.type?.tensorType?.shape?.dim;
  const batch = outputDims?.length === 2 ? outputDims[0]! : { dimParam: 'batch' };
  graph.node = nodes;
  graph.initializer = (graph.initializer ?? []).filter((t) => !dropped.has(t.name ?? ''));
  graph.sparseInitializer = (graph.sparseInitializer ?? []).filter((t) => read.has(t.values?.name ?? ''));
  // Old exporters list initializers as inputs too; a dropped one must not become an input without a value.
  graph.input = (graph.input ?? []).filter((i) => !dropped.has(i.name ?? ''));
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => produced.has(v.name ?? ''));
  graph.output = [
    { name: output, type: { tensorType: { elemType: ElemType.FLOAT, shape: { dim: [batch, { dimValue: size }] } } } },
  ];
  return onnx.ModelProto.encode(model).finish();
}
