/**
 * headForward: the head's part of the graph's computation in plain JavaScript — embeddings [n, features] row-major
 * through the dense layers (float64 sums, float32 results) and the graph's own output activation (Softmax,
 * LogSoftmax, Sigmoid or none), so it gives what the whole graph outputs for those examples, [n, classes].
 */
import { unflattenWeights } from '../flat-weights.ts';
import type { HeadPlace, HiddenActivation, OutputActivation } from './detect.ts';
import { HeadError } from './head-error.ts';

function activateRow(z: Float32Array, from: number, to: number, act: HiddenActivation | OutputActivation): void {
  if (act === 'softmax' || act === 'logSoftmax') {
    let max = -Infinity;
    for (let i = from; i < to; i++) max = Math.max(max, z[i]!);
    let sum = 0;
    for (let i = from; i < to; i++) sum += Math.exp(z[i]! - max);
    const logSum = Math.log(sum);
    for (let i = from; i < to; i++) z[i] = act === 'softmax' ? Math.exp(z[i]! - max) / sum : z[i]! - max - logSum;
    return;
  }
  for (let i = from; i < to; i++) {
    const v = z[i]!;
    if (act === 'relu') z[i] = Math.max(v, 0);
    else if (act === 'sigmoid') z[i] = 1 / (1 + Math.exp(-v));
    else if (act === 'tanh') z[i] = Math.tanh(v);
  }
}

export function headForward(head: HeadPlace, flat: Float32Array, embeddings: Float32Array): Float32Array {
  const weights = unflattenWeights(head.spec, flat);
  let width = head.embedding.size;
  const n = embeddings.length / width;
  if (!Number.isInteger(n)) throw new HeadError(`embeddings: ${embeddings.length} values are not rows of ${width}`);
  let a = embeddings;
  head.layers.forEach((layer, l) => {
    const kernel = weights[2 * l]!.values,
      bias = weights[2 * l + 1]!.values,
      units = layer.units;
    const z = new Float32Array(n * units);
    const acc = new Float64Array(units);
    for (let r = 0; r < n; r++) {
      for (let u = 0; u < units; u++) acc[u] = bias[u]!;
      for (let j = 0; j < width; j++) {
        const x = a[r * width + j]!;
        if (x !== 0) for (let u = 0; u < units; u++) acc[u] = acc[u]! + x * kernel[j * units + u]!;
      }
      z.set(acc, r * units);
      activateRow(
        z,
        r * units,
        (r + 1) * units,
        l === head.layers.length - 1 ? head.output.activation : layer.activation,
      );
    }
    a = z;
    width = units;
  });
  return a;
}
