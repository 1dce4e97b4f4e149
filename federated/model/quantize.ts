/**
 * quantizeModel: an fp32 ONNX model with smaller weights, in every graph of it (If branches, Loop and Scan bodies
 * too), graph inputs, outputs and node names unchanged.
 *  - 'weight-only' (default): int8 initializers + DequantizeLinear feeding the original MatMul (either side)/Gemm/
 *    Conv/ConvTranspose/LSTM/GRU/RNN/Gather, so compute stays fp32 (ORT folds the dequantize at load) and only
 *    storage shrinks. Symmetric (zero point 0), per output channel from opset 13, per tensor on opsets 10–12.
 *    Chosen as default because MatMulInteger-style int8 compute measured 1.9-2.6x slower than fp32 in ORT-web WASM.
 *  - 'dynamic': MatMul/Gemm become DynamicQuantizeLinear + MatMulInteger + rescale (activations quantized per
 *    tensor at run time, as onnxruntime.quantization.quantize_dynamic does); other weights stay weight-only.
 *  - 'fp16': float initializers stored as FLOAT16 and Cast back to FLOAT where they are read.
 * Everything else stays fp32. Works on graphs this project did not write. The modules in quantize/ do one job each:
 * scopes.ts walks graphs and resolves names, weight-inputs.ts knows which inputs are weights, int8.ts and
 * float16.ts do the arithmetic, int8-plan.ts / dynamic.ts / float16-plan.ts decide, rewrite.ts edits.
 */
import { ElemType, decodeModel, onnx } from './onnx-graph.ts';
import { OnnxFormatError } from './onnx-format-error.ts';
import { float16Plan } from './quantize/float16-plan.ts';
import { int8Plan } from './quantize/int8-plan.ts';
import { Rewrite } from './quantize/rewrite.ts';
import { nameGenerator, references, scopesOf } from './quantize/scopes.ts';
import type { PlanContext } from './quantize/plan-context.ts';
import {
  QUANTIZE_MODES,
  QuantizeError,
  type QuantizeMode,
  type QuantizeOptions,
  type QuantizeReport,
  elementCount,
} from './quantize/types.ts';

export { quantizeWeights } from './quantize/int8.ts';
export { float16Bits } from './quantize/float16.ts';
export {
  QuantizeError,
  type QuantizeMode,
  type QuantizeOptions,
  type QuantizeReport,
  type QuantizedWeight,
} from './quantize/types.ts';
export { OnnxFormatError };

/** Operators that mean the model is quantized already (ai.onnx and com.microsoft). */
const QUANTIZED_OPS = new Set([
  'DequantizeLinear',
  'QuantizeLinear',
  'DynamicQuantizeLinear',
  'MatMulInteger',
  'ConvInteger',
  'QLinearMatMul',
  'QLinearConv',
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
  'DynamicQuantizeLSTM',
  'QGemm',
  'QAttention',
  'MatMulNBits',
]);

/** The oldest ai.onnx opset each mode can write: DequantizeLinear came in opset 10, Cast to/from float16 in 6. */
const MIN_OPSET: Record<QuantizeMode, { opset: number; why: string }> = {
  'weight-only': { opset: 10, why: 'int8 weights need DequantizeLinear, which opset 10 introduced' },
  dynamic: { opset: 10, why: 'int8 weights need DequantizeLinear, which opset 10 introduced' },
  fp16: { opset: 6, why: 'float16 weights need Cast from float16, which opset 6 introduced' },
};

export function quantizeModel(
  onnxBytes: Uint8Array,
  options: QuantizeOptions = {},
): { bytes: Uint8Array; report: QuantizeReport } {
  const mode = options.mode ?? 'weight-only';
  if (!QUANTIZE_MODES.includes(mode))
    throw new QuantizeError(
      `mode must be ${QUANTIZE_MODES.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(mode)}`,
    );
  const minElements = options.minElements ?? 256;
  const model = decodeModel(onnxBytes);
  const opset = Number(model.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
  const need = MIN_OPSET[mode];
  if (opset < need.opset)
    throw new QuantizeError(
      `model uses opset ${opset}; ${need.why} (convert the model to opset ${need.opset} or later${mode === 'fp16' ? '' : ', or use fp16'})`,
    );
  const scopes = scopesOf(model.graph!);
  for (const scope of scopes) {
    const op = scope.graph.node?.find((n) => QUANTIZED_OPS.has(n.opType ?? ''));
    if (op) throw new QuantizeError(`model is already quantized (it has ${op.opType} in graph ${scope.path})`);
  }
  const report: QuantizeReport = {
    mode,
    opset,
    storage: mode === 'fp16' ? 'float16' : 'int8',
    quantized: [],
    skipped: [],
    notes: [],
  };
  const ctx: PlanContext = {
    scopes,
    refs: references(scopes),
    opset,
    minElements,
    fresh: nameGenerator(scopes),
    rewrite: new Rewrite(),
    report,
  };
  if (mode === 'fp16') float16Plan(ctx);
  else int8Plan(ctx, mode === 'dynamic');
  ctx.rewrite.apply(scopes);
  model.producerName = `${model.producerName ?? ''}+fedge-quantize`;
  return { bytes: onnx.ModelProto.encode(model).finish(), report };
}

/** Bytes of FLOAT initializers in every graph of the model (what the quantizer can shrink, and what it measures by). */
export function floatWeightBytes(onnxBytes: Uint8Array): number {
  return scopesOf(decodeModel(onnxBytes).graph!).reduce(
    (sum, { initializers }) =>
      sum +
      [...initializers.values()]
        .filter((t) => t.dataType === ElemType.FLOAT)
        .reduce((n, t) => n + 4 * elementCount(t.dims), 0),
    0,
  );
}
