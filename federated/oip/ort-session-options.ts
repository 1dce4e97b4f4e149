/**
 * The ONNX Runtime session setting the edge and devices share, so a model runs the same arithmetic on both.
 * Weight-only int8 models store DequantizeLinear(int8 initializer) → MatMul. ORT keeps DequantizeLinear out of constant
 * folding while its QDQ fusions are on, so every run would dequantize every weight again (a decoder: every token).
 * Turning the QDQ transformers off lets constant folding dequantize once at load: int8 on the wire and in storage,
 * fp32 compute (MatMulInteger-style int8 is slower than fp32 in WASM). Measured by bench:generate: 2× on WASM.
 */
export const DEQUANTIZE_ONCE = { disable_quant_qdq: '1' } as const;
