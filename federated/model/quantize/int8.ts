/** The int8 arithmetic: symmetric scales per channel or per tensor. */
import { QuantizeError } from './types.ts';

/**
 * Symmetric int8 per channel along `axis` (or per tensor): scale = max|w| / qmax. qmax is 127, or 63 ("reduce
 * range") for weights MatMulInteger will use: x86's u8×s8 kernels (VPMADDUBSW) add pairs of products in int16,
 * which saturates with full-range weights (onnxruntime's quantization guide, "reduce_range").
 */
export function quantizeWeights(
  values: Float32Array,
  dims: number[],
  axis: number | null,
  qmax = 127,
): { q: Int8Array; scales: Float32Array } {
  const channels = axis === null ? 1 : dims[axis]!;
  const inner = axis === null ? values.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => (axis === null ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i),
      v = Math.abs(values[i]!);
    if (!Number.isFinite(v)) throw new QuantizeError(`weight has a non-finite value at ${i}`);
    if (v > maxAbs[c]!) maxAbs[c] = v;
  }
  const scales = maxAbs.map((m) => (m > 0 ? m / qmax : 1));
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++)
    q[i] = Math.max(-qmax, Math.min(qmax, Math.round(values[i]! / scales[channelOf(i)]!)));
  return { q, scales };
}
