/**
 * Named weights <-> one flat Float32Array, in the order model-spec.ts `parameterShapes` fixes.
 * The flat vector is the unit of federated work: clipped, noised, masked and summed.
 */
import { type ModelSpec, type NamedWeight, ModelSpecError, parameterShapes } from './model-spec.ts';

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function flattenWeights(spec: ModelSpec, weights: NamedWeight[]): Float32Array {
  const params = parameterShapes(spec);
  if (weights.length !== params.length)
    throw new ModelSpecError(`weights: expected ${params.length} tensors, got ${weights.length}`);
  const flat = new Float32Array(params.reduce((n, p) => n + size(p.shape), 0));
  let offset = 0;
  params.forEach((p, i) => {
    const w = weights[i]!;
    if (w.name !== p.name || w.values.length !== size(p.shape)) {
      throw new ModelSpecError(
        `weights[${i}]: expected ${p.name} [${p.shape}], got ${w.name} with ${w.values.length} values`,
      );
    }
    flat.set(w.values, offset);
    offset += w.values.length;
  });
  return flat;
}

export function unflattenWeights(spec: ModelSpec, flat: Float32Array): NamedWeight[] {
  const params = parameterShapes(spec);
  const total = params.reduce((n, p) => n + size(p.shape), 0);
  if (flat.length !== total) throw new ModelSpecError(`flat weights: expected ${total} values, got ${flat.length}`);
  let offset = 0;
  return params.map((p) => {
    const n = size(p.shape);
    const values = flat.slice(offset, offset + n);
    offset += n;
    return { name: p.name, shape: p.shape, values };
  });
}
