/**
 * Matching a head to a model: the same head (nodes, weights, shapes, spec) found again in given bytes, whether the
 * weights are stored fp32 or int8 there — the task keeps the base's fp32 copy next to the int8 version it serves.
 */
import type { ModelProto } from '../onnx-graph.ts';
import { type Head, type HeadPlace, detectHeadIn, readServedModel } from './detect.ts';
import { HeadError } from './head-error.ts';
import type { StoredWeight } from './weights.ts';

/** What identifies a head's place in a graph, whether its weights are stored fp32 or int8. */
function signature(h: HeadPlace): string {
  const weight = ({ name, dims, transposed, factor }: StoredWeight) => ({ name, dims, transposed, factor });
  return JSON.stringify({
    layers: h.layers.map((l) => ({ ...l, kernel: weight(l.kernel), bias: weight(l.bias) })),
    embedding: h.embedding,
    output: h.output,
    spec: h.spec,
  });
}

/**
 * The head detected in `model` at the place `head` names (same nodes, weights, shapes and spec); `head` may come
 * from the model's fp32 copy when `model` is its int8 version, or the other way round. Throws HeadError otherwise.
 */
export function sameHeadIn(model: ModelProto, head: HeadPlace): Head {
  let found: Head;
  try {
    found = detectHeadIn(model, { layers: head.layers.length, output: head.output.name });
  } catch (e) {
    if (e instanceof HeadError) throw new HeadError(`the model does not have this head: ${e.message}`, e.node);
    throw e;
  }
  if (signature(found) !== signature(head))
    throw new HeadError(
      `the model's head differs from this one (its layers are ${found.layers.map((l) => `${l.op} '${l.nodes[0]}' [${l.inputSize}→${l.units}]`).join(', ')})`,
    );
  return found;
}

/** The fp32 copy's head, checked to be the same head as the int8 version's (the task publishes from the fp32 copy). */
export function fp32HeadFor(int8Head: HeadPlace, fp32Bytes: Uint8Array): Head {
  const head = sameHeadIn(readServedModel(fp32Bytes), int8Head);
  if (head.quantized) throw new HeadError('the fp32 copy has quantized head weights too');
  return head;
}
