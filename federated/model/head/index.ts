/**
 * Head detection and surgery for any served ONNX classifier: find its final dense layer(s) (detect.ts), cut the
 * graph at the head's input for the device (body.ts), compute the head in plain JS (forward.ts), and write trained
 * head weights back into the original bytes (write.ts). Pure: no I/O.
 */
export {
  detectHead,
  detectHeadIn,
  headLayers,
  type DenseLocation,
  type DetectOptions,
  type Head,
  type HeadPlace,
  type HiddenActivation,
  type OutputActivation,
} from './detect.ts';
export { headBody } from './body.ts';
export { headForward } from './forward.ts';
export { writeHead } from './write.ts';
export { sameHeadIn, fp32HeadFor } from './match.ts';
export { HeadError, type NodeRef } from './head-error.ts';
export type { Quantization, StoredWeight } from './weights.ts';
