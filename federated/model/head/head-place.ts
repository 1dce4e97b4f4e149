/**
 * What a detected head is, as plain data: where its dense layers, weights, embedding and output sit in the graph.
 * No ONNX types here — a task stores a HeadPlace as JSON and the SDK's declarations reference it, so this module must
 * not pull the protobuf schema's types into a consumer's type check.
 */
import type { ModelSpec, NamedWeight } from '../model-spec.ts';

export interface Quantization {
  /** the DequantizeLinear node */
  node: string;
  /** initializers: the integer data, its scale(s) and zero point(s) */
  data: string;
  scale: string;
  zeroPoint: string | undefined;
  dataType: number;
  /** channel axis of the scales in the stored dims; null = one scale for the tensor */
  axis: number | null;
}

export interface StoredWeight {
  /** The tensor the dense node reads: an initializer, or the output of the DequantizeLinear that makes it. */
  name: string;
  /** Dims as stored. */
  dims: number[];
  /** Kernels only: stored [out, in]. */
  transposed: boolean;
  /** Gemm alpha (kernel) or beta (bias), folded into the Fedge values; 1 elsewhere. */
  factor: number;
  quantized?: Quantization | undefined;
}

export type HiddenActivation = 'linear' | 'relu' | 'sigmoid' | 'tanh';
/** What the graph applies to the last layer's output: 'none' = it outputs the logits. */
export type OutputActivation = 'softmax' | 'logSoftmax' | 'sigmoid' | 'none';

export interface DenseLocation {
  op: 'Gemm' | 'MatMul+Add';
  /** Node names: [Gemm] or [MatMul, Add]. */
  nodes: string[];
  /** The tensor holding this layer's input. */
  input: string;
  /** The rows [batch, in] are Transpose(input): the layer reads an [in, batch] tensor. */
  inputTransposed: boolean;
  /** The tensor this layer computes: [batch, units], or [units, batch] when `outputTransposed`. */
  output: string;
  outputTransposed: boolean;
  inputSize: number;
  units: number;
  kernel: StoredWeight;
  bias: StoredWeight;
  /** The elementwise activation between this layer and the next one of the head; 'linear' for the last. */
  activation: HiddenActivation;
}

export interface Head {
  /**
   * The head as a Fedge model: inputShape [embedding size], the dense layers, labels. The last layer is softmax
   * when the graph applies Softmax, LogSoftmax (the graph outputs the log of the spec's output) or nothing (the
   * graph outputs the logits, the spec's pre-activations): softmax cross-entropy trains the same model in all three.
   * It is sigmoid when the graph applies Sigmoid (the Trainer, which trains softmax heads only, refuses it).
   */
  spec: ModelSpec;
  /** The graph's head weights in Fedge's layout ([in, out] kernels, alpha/beta folded), parameterShapes order. */
  weights: NamedWeight[];
  flat: Float32Array;
  /** First to last. */
  layers: DenseLocation[];
  /** The body's output: `tensor` of the graph (transposed first if `transposed`), exposed as `output`. */
  embedding: { tensor: string; transposed: boolean; size: number; output: string };
  /** The graph output the head computes and the nodes after the last dense layer (left untouched by writeHead). */
  output: { name: string; activation: OutputActivation; nodes: string[] };
  opset: number;
  /** Some head weight is dequantized from int8/uint8 in this graph. */
  quantized: boolean;
}

/**
 * Where a head is in its graph, without its weights: plain JSON (a task can store it), all that headBody,
 * writeHead and headForward need.
 */
export type HeadPlace = Pick<Head, 'spec' | 'layers' | 'embedding' | 'output'>;
