/**
 * Model spec: plain, versioned data describing an architecture the platform trains.
 * One spec + one set of named float32 weights builds the tfjs model (training) and the ONNX graph (serving).
 * Layouts follow tfjs (NHWC activations, dense kernels [in, out], conv kernels [kh, kw, in, out]).
 */

import type { HashedBagOfWords } from './text-features.ts';

export const MODEL_SPEC_FORMAT = 'fedge.model/v1';

/** How raw examples become the input tensor, when it is not given as numbers (text-features.ts). */
export type FeatureSpec = HashedBagOfWords;

export type Activation = 'linear' | 'relu' | 'sigmoid' | 'tanh' | 'softmax';

export interface DenseLayer {
  type: 'dense';
  units: number;
  activation: Activation;
}
export interface Conv2dLayer {
  type: 'conv2d';
  filters: number;
  kernelSize: number;
  strides?: number;
  padding: 'valid' | 'same';
  activation: Activation;
}
export interface MaxPool2dLayer {
  type: 'maxPool2d';
  poolSize: number;
  strides?: number;
}
export interface FlattenLayer {
  type: 'flatten';
}
/** Training-time regularisation only: drops `rate` of its inputs while training; the identity when serving. */
export interface DropoutLayer {
  type: 'dropout';
  rate: number;
}
export type LayerSpec = DenseLayer | Conv2dLayer | MaxPool2dLayer | FlattenLayer | DropoutLayer;

export interface ModelSpec {
  format: typeof MODEL_SPEC_FORMAT;
  name: string;
  /** Shape of one example, without the batch dimension (e.g. [784] or [28, 28, 1]). */
  inputShape: number[];
  layers: LayerSpec[];
  /** Tensor names used by the exported ONNX graph and the OIP endpoint. */
  inputName: string;
  outputName: string;
  /** Class labels of the final layer, in output order. */
  labels: string[];
  /** Present when examples are text: inputShape is then [features.buckets]. */
  features?: FeatureSpec;
}

/** A named float32 parameter, in the order {@link parameterShapes} gives. */
export interface NamedWeight {
  name: string;
  shape: number[];
  values: Float32Array;
}

export class ModelSpecError extends Error {
  override name = 'ModelSpecError';
}

function positiveInt(v: unknown, label: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new ModelSpecError(`${label}: expected a positive integer, got ${String(v)}`);
  return v;
}

/** Shape of one example after each layer; throws ModelSpecError on an impossible spec. */
export function layerOutputShapes(spec: ModelSpec): number[][] {
  let shape = [...spec.inputShape];
  const shapes: number[][] = [];
  spec.layers.forEach((layer, i) => {
    const at = `layers[${i}] (${layer.type})`;
    switch (layer.type) {
      case 'dense':
        if (shape.length !== 1)
          throw new ModelSpecError(`${at}: dense needs a flat input, got shape [${shape}]; add a flatten layer`);
        shape = [positiveInt(layer.units, `${at}.units`)];
        break;
      case 'conv2d': {
        if (shape.length !== 3) throw new ModelSpecError(`${at}: conv2d needs [h, w, c] input, got [${shape}]`);
        const k = positiveInt(layer.kernelSize, `${at}.kernelSize`);
        const s = positiveInt(layer.strides ?? 1, `${at}.strides`);
        const [h, w] = shape as [number, number, number];
        const out = (n: number) => (layer.padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1);
        if (out(h) <= 0 || out(w) <= 0) throw new ModelSpecError(`${at}: kernel ${k} does not fit input [${shape}]`);
        shape = [out(h), out(w), positiveInt(layer.filters, `${at}.filters`)];
        break;
      }
      case 'maxPool2d': {
        if (shape.length !== 3) throw new ModelSpecError(`${at}: maxPool2d needs [h, w, c] input, got [${shape}]`);
        const p = positiveInt(layer.poolSize, `${at}.poolSize`);
        const s = positiveInt(layer.strides ?? p, `${at}.strides`);
        const [h, w, c] = shape as [number, number, number];
        shape = [Math.floor((h - p) / s) + 1, Math.floor((w - p) / s) + 1, c];
        if (shape[0]! <= 0 || shape[1]! <= 0) throw new ModelSpecError(`${at}: pool ${p} does not fit input`);
        break;
      }
      case 'flatten':
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case 'dropout':
        if (typeof layer.rate !== 'number' || !(layer.rate >= 0 && layer.rate < 1))
          throw new ModelSpecError(`${at}.rate: expected a number in [0, 1), got ${String(layer.rate)}`);
        break;
      default:
        throw new ModelSpecError(`${at}: unknown layer type`);
    }
    shapes.push(shape);
  });
  return shapes;
}

/** Validates a spec (as plain data from anywhere) and returns it typed. */
export function parseModelSpec(value: unknown): ModelSpec {
  if (typeof value !== 'object' || value === null) throw new ModelSpecError('model spec: expected an object');
  const s = value as Partial<ModelSpec>;
  if (s.format !== MODEL_SPEC_FORMAT)
    throw new ModelSpecError(`model spec: format must be "${MODEL_SPEC_FORMAT}", got ${JSON.stringify(s.format)}`);
  if (typeof s.name !== 'string' || !s.name) throw new ModelSpecError('model spec: name must be a non-empty string');
  if (!Array.isArray(s.inputShape) || s.inputShape.length === 0)
    throw new ModelSpecError('model spec: inputShape must be a non-empty array');
  s.inputShape.forEach((d, i) => positiveInt(d, `model spec: inputShape[${i}]`));
  if (!Array.isArray(s.layers) || s.layers.length === 0)
    throw new ModelSpecError('model spec: layers must be a non-empty array');
  if (typeof s.inputName !== 'string' || typeof s.outputName !== 'string')
    throw new ModelSpecError('model spec: inputName and outputName must be strings');
  if (!Array.isArray(s.labels)) throw new ModelSpecError('model spec: labels must be an array of strings');
  const spec = s as ModelSpec;
  if (spec.features !== undefined) checkFeatures(spec);
  const shapes = layerOutputShapes(spec);
  const last = shapes[shapes.length - 1]!;
  if (last.length !== 1 || last[0] !== spec.labels.length) {
    throw new ModelSpecError(`model spec: final layer gives [${last}] but there are ${spec.labels.length} labels`);
  }
  return spec;
}

function checkFeatures(spec: ModelSpec): void {
  const f = spec.features as Partial<HashedBagOfWords> | null;
  if (typeof f !== 'object' || f === null || f.kind !== 'hashedBagOfWords')
    throw new ModelSpecError('model spec: features.kind must be "hashedBagOfWords"');
  positiveInt(f.buckets, 'model spec: features.buckets');
  positiveInt(f.maxChars, 'model spec: features.maxChars');
  if (f.ngrams !== 1 && f.ngrams !== 2)
    throw new ModelSpecError(`model spec: features.ngrams must be 1 or 2, got ${String(f.ngrams)}`);
  if (spec.inputShape.length !== 1 || spec.inputShape[0] !== f.buckets) {
    throw new ModelSpecError(
      `model spec: hashed text features give [${f.buckets}] but inputShape is [${spec.inputShape}]`,
    );
  }
}

/**
 * The trainable parameters in their stable order: layer by layer, kernel before bias, each
 * flattened row-major in the tfjs layout. This order is the flat vector devices mask and the server sums.
 */
export function parameterShapes(spec: ModelSpec): { name: string; shape: number[] }[] {
  const out: { name: string; shape: number[] }[] = [];
  let shape = [...spec.inputShape];
  const shapes = layerOutputShapes(spec);
  spec.layers.forEach((layer, i) => {
    if (layer.type === 'dense') {
      out.push({ name: `${i}_dense/kernel`, shape: [shape[0]!, layer.units] });
      out.push({ name: `${i}_dense/bias`, shape: [layer.units] });
    } else if (layer.type === 'conv2d') {
      out.push({ name: `${i}_conv2d/kernel`, shape: [layer.kernelSize, layer.kernelSize, shape[2]!, layer.filters] });
      out.push({ name: `${i}_conv2d/bias`, shape: [layer.filters] });
    }
    shape = shapes[i]!;
  });
  return out;
}

export function parameterCount(spec: ModelSpec): number {
  return parameterShapes(spec).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}
