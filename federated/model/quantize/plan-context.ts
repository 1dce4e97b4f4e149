/** What a plan works on. Kept apart from types.ts, which the package's declarations reach: no ONNX types there. */
import type { TensorProto } from '../onnx-graph.ts';
import type { Rewrite } from './rewrite.ts';
import type { Reference, Scope } from './scopes.ts';
import type { QuantizeReport } from './types.ts';

/** What a plan (int8-plan.ts, float16-plan.ts) works on: the model's graphs, who reads each initializer, the edits. */
export interface PlanContext {
  scopes: Scope[];
  refs: Map<TensorProto, Reference[]>;
  opset: number;
  minElements: number;
  /** a name not used anywhere in the model yet */
  fresh: (base: string) => string;
  rewrite: Rewrite;
  report: QuantizeReport;
}
