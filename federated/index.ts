/**
 * fedge/federated — the isomorphic core (no I/O): model spec, weights ↔ flat vectors, ONNX export, int8
 * quantization, text features. Secure aggregation and differential privacy join here as they land.
 */
export * from './model/model-spec.ts';
export * from './model/flat-weights.ts';
export * from './model/onnx-export.ts';
export { quantizeModel, QuantizeError, type QuantizeMode, type QuantizeOptions, type QuantizeReport } from './model/quantize.ts';
export { OnnxFormatError } from './model/onnx-graph.ts';
export * from './model/text-features.ts';
