/** IEEE 754 binary16 from float32, rounded to nearest even, as onnx.numpy_helper / numpy's astype(float16) do. */
import { QuantizeError } from './types.ts';
import { toHalfBits } from '../../oip/half-float.ts';

/** The largest finite float16. */
export const FLOAT16_MAX = 65504;

/** The float16 bit pattern of `v` (NaN stays NaN, ±Infinity and overflow become ±Infinity). */
export const float16Bits = toHalfBits;

/** float16 bit patterns of `values`; refuses values float16 cannot hold (|v| > 65504 or not finite). */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new QuantizeError(`weight has a non-finite value at ${i}`);
    if (Math.abs(v) > FLOAT16_MAX)
      throw new QuantizeError(`weight has ${v} at ${i}, beyond float16's range (±${FLOAT16_MAX})`);
    out[i] = float16Bits(v);
  }
  return out;
}
