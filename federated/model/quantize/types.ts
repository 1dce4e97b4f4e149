/** The quantizer's options, report and error (no ONNX types: the package's declarations reach this file; plan-context.ts has the rest). */

/** 'weight-only' and 'dynamic' store int8 weights; 'fp16' stores float16 weights. */
export type QuantizeMode = 'weight-only' | 'dynamic' | 'fp16';
export const QUANTIZE_MODES: readonly QuantizeMode[] = ['weight-only', 'dynamic', 'fp16'];

export interface QuantizeOptions {
  mode?: QuantizeMode | undefined;
  /** Weights with fewer elements stay fp32 (a bias-sized matrix gains nothing). Default 256. */
  minElements?: number | undefined;
}

export interface QuantizedWeight {
  /** the initializer's name (unchanged in the output: the DequantizeLinear or Cast that replaces it has it as output) */
  weight: string;
  /** the graph that owns it: 'main', or the path to a subgraph (`If_25.then_branch/If_177.else_branch`) */
  graph: string;
  /** the nodes that read it, in any graph */
  nodes: string[];
  /** the axis of its per-channel scales; null = one scale for the tensor (and always null in fp16 mode) */
  axis: number | null;
  elements: number;
}

export interface QuantizeReport {
  mode: QuantizeMode;
  /** the model's ai.onnx opset */
  opset: number;
  /** what the weights became */
  storage: 'int8' | 'float16';
  quantized: QuantizedWeight[];
  skipped: { node: string; reason: string }[];
  /** facts about the whole model worth printing (e.g. per-tensor scales because the opset predates per-axis DequantizeLinear) */
  notes: string[];
}

/** What the quantizer cannot do with this model, and why. */
export class QuantizeError extends Error {
  override name = 'QuantizeError';
}

/** The refusal when a plan found nothing: what it looked for, and why each candidate stayed as it was. */
export function nothingToQuantize(report: QuantizeReport, lookedFor: string): QuantizeError {
  const why = report.skipped.length ? ` (${report.skipped.map((s) => `${s.node}: ${s.reason}`).join('; ')})` : '';
  return new QuantizeError(`nothing to quantize: no ${lookedFor}${why}`);
}

/** Elements of a tensor with these dims. */
export const elementCount = (dims: readonly (number | { toNumber(): number })[] | null | undefined) =>
  (dims ?? []).reduce((a: number, b) => a * Number(b), 1);
