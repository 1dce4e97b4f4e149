/**
 * OnnxFormatError: bytes that are not an ONNX model (or not one Fedge can read). A module of its own so the public
 * declarations that name it (fedge/federated, quantize) do not pull in the ONNX message types (onnx-protobuf.ts).
 */
export class OnnxFormatError extends Error {
  override name = 'OnnxFormatError';
}
