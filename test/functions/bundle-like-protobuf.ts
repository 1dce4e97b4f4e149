/**
 * Setup of the workers test pool (vitest.config.ts setupFiles). It used to make protobufjs (through onnx-proto) write
 * strings the way the deployed bundle does: in this pool protobufjs found Node's `require` and wrote strings of 40+
 * characters through workerd's Buffer, whose utf8Write refuses its arguments. ONNX is now encoded and decoded by
 * federated/model/onnx-protobuf.ts, which never touches Buffer (TextEncoder/TextDecoder only), so the pool and the
 * bundle take the same path with nothing to set up. Kept empty until the setupFiles entry goes.
 */
export {};
