/**
 * The 'fp16' plan: every float initializer with enough elements, in every graph, is stored as FLOAT16 and read
 * through Cast(to=FLOAT) under its own name — whatever reads it, it still gets a float tensor, so graph inputs,
 * outputs and every operator's types stay fp32 (onnxconverter-common's keep_io_types without converting
 * operators: onnxruntime-web and onnxruntime-node both run any op on float, and fold the Cast away at load).
 */
import { ElemType, floatValues, node, rawTensor } from '../onnx-graph.ts';
import { OnnxFormatError } from '../onnx-format-error.ts';
import { toFloat16 } from './float16.ts';
import { nodeLabel } from './scopes.ts';
import { QuantizeError, elementCount, nothingToQuantize } from './types.ts';
import type { PlanContext } from './plan-context.ts';

export function float16Plan({ scopes, refs, minElements, fresh, rewrite, report }: PlanContext): void {
  for (const scope of scopes) {
    for (const tensor of scope.graph.initializer ?? []) {
      if (tensor.dataType !== ElemType.FLOAT || elementCount(tensor.dims) < minElements) continue;
      const w = tensor.name!;
      const readers = (refs.get(tensor) ?? []).map((r) => nodeLabel(r.node));
      const label = readers.join(', ') || w;
      let half: Uint16Array;
      try {
        half = toFloat16(floatValues(tensor));
      } catch (e) {
        if (e instanceof OnnxFormatError || e instanceof QuantizeError) {
          report.skipped.push({ node: label, reason: `weight ${w}: ${e.message}` });
          continue;
        }
        throw e;
      }
      const dims = (tensor.dims ?? []).map(Number);
      const hName = fresh(`${w}_fp16`);
      rewrite.replaceInitializer(
        scope,
        w,
        [rawTensor(hName, dims, ElemType.FLOAT16, half)],
        node('Cast', [hName], [w], { to: ElemType.FLOAT }, fresh(`${w}_cast`)),
      );
      report.quantized.push({ weight: w, graph: scope.path, nodes: readers, axis: null, elements: half.length });
    }
  }
  if (!report.quantized.length) throw nothingToQuantize(report, `float initializer with ≥ ${minElements} elements`);
}
