/**
 * fedge/federated — the isomorphic core (no I/O; runs in workerd, browsers and Node): model spec, weights ↔ flat
 * vectors, ONNX export, int8 quantization, text features; SecAgg+ stage functions, fixed-point encoding and the
 * wire format; differential privacy (RDP accountant, distributed discrete Gaussian).
 */
export * from './model/model-spec.ts';
export * from './model/flat-weights.ts';
export * from './model/onnx-export.ts';
export * from './model/onnx-import.ts';
export {
  quantizeModel,
  QuantizeError,
  type QuantizeMode,
  type QuantizeOptions,
  type QuantizeReport,
} from './model/quantize.ts';
export { OnnxFormatError } from './model/onnx-format-error.ts';
export * from './model/text-features.ts';

export * from './secagg/messages.ts';
export {
  clientAdvertiseKeys,
  clientShareKeys,
  clientMaskedInput,
  clientUnmask,
  createIdentity,
  type ClientState,
  type DeviceIdentity,
} from './secagg/client.ts';
export {
  serverInit,
  serverReceive,
  serverCloseAdvertise,
  serverCloseShares,
  serverCloseMasked,
  serverCloseUnmask,
  type ServerState,
  type AggregateResult,
} from './secagg/server.ts';
export {
  mintEnrollmentCredential,
  credentialBytes,
  type EnrollmentCredential,
  type EnrollmentPolicy,
} from './aggregation/enrollment.ts';
export { secAggParameters, type SecAggParameters } from './secagg/parameters.ts';
export { fixedPointFor, encodeUpdate, decodeSum, type FixedPoint } from './secagg/fixed-point.ts';
export { encodeMessage, decodeMessage } from './secagg/wire.ts';
export { assignShards, shardOf, shardPlan, type ShardAssignment, type ShardPlan } from './secagg/shards.ts';
export {
  updateCodec,
  encodedLength,
  UpdateDecodeError,
  type UpdateCodec,
  type UpdateEncoding,
} from './aggregation/update-codec.ts';
export { useKeystream, type Keystream } from './secagg/prg.ts';

export {
  RdpAccountant,
  noiseMultiplierFor,
  computeRdp,
  rdpToEpsilon,
  zcdpToEpsilon,
  DEFAULT_ORDERS,
  OPACUS_ORDERS,
  TF_PRIVACY_ORDERS,
} from './dp/rdp.ts';
export {
  ddgaussParameters,
  ddgaussEncode,
  ddgaussDecode,
  ddgaussEpsilon,
  ddgaussRoundRho,
  type DdgaussParameters,
} from './dp/distributed-dp.ts';
export { sampleDiscreteGaussian } from './dp/discrete-gaussian.ts';
