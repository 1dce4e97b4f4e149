/**
 * The int8 plan ('weight-only' and 'dynamic'): find the weight inputs in every graph, quantize each weight once
 * (per channel from opset 13, per tensor before: opset 10–12's DequantizeLinear has no axis), and replace it by an
 * int8 initializer + DequantizeLinear in the graph that owns it; in 'dynamic' mode, the MatMul/Gemm nodes that can
 * run as MatMulInteger are rewritten to do so.
 */
import { ElemType, type TensorProto, floatValues, node, rawTensor } from '../onnx-graph.ts';
import { OnnxFormatError } from '../onnx-format-error.ts';
import { dynamicPlan, dynamicRefusal } from './dynamic.ts';
import { quantizeWeights } from './int8.ts';
import { type Owned, type Reference, nodeLabel, resolve } from './scopes.ts';
import { QuantizeError, elementCount, nothingToQuantize } from './types.ts';
import type { PlanContext } from './plan-context.ts';
import { WEIGHT_OPS, channelAxis, weightInputs } from './weight-inputs.ts';

/** The first opset with per-axis DequantizeLinear. */
export const PER_CHANNEL_OPSET = 13;

interface Use extends Reference {
  /** channel axis for this use; null = per tensor */
  axis: number | null;
}
interface Weight extends Owned {
  uses: Use[];
}

/** Every weight input of every graph, by initializer; the weight inputs that are not float initializers go to `skipped`. */
function weightUses({ scopes, opset, report }: PlanContext): Map<TensorProto, Weight> {
  const weights = new Map<TensorProto, Weight>();
  for (const scope of scopes) {
    for (const n of scope.graph.node ?? []) {
      const slots = weightInputs(n);
      if (!slots.length) continue;
      // Gather is an embedding lookup only on a float table; on shapes and indices it is plumbing, not worth a line.
      const quiet = n.opType === 'Gather';
      const constant = slots
        .map((input) => ({ input, owned: n.input?.[input] ? resolve(scope, n.input[input]!) : undefined }))
        .filter((s) => s.owned);
      if (!constant.length && !quiet)
        report.skipped.push({ node: nodeLabel(n), reason: 'weight is not an initializer (computed at run time)' });
      for (const { input, owned } of constant) {
        const { tensor } = owned!;
        if (tensor.dataType !== ElemType.FLOAT) {
          if (!quiet)
            report.skipped.push({
              node: nodeLabel(n),
              reason: `weight ${tensor.name} is not FLOAT (data type ${tensor.dataType})`,
            });
          continue;
        }
        const rank = tensor.dims?.length ?? 0;
        const axis = opset >= PER_CHANNEL_OPSET ? channelAxis(n, input, rank) : null;
        const weight = weights.get(tensor) ?? { ...owned!, uses: [] };
        weight.uses.push({ node: n, scope, input, axis });
        weights.set(tensor, weight);
      }
    }
  }
  return weights;
}

export function int8Plan(ctx: PlanContext, dynamic: boolean): void {
  const { refs, opset, minElements, fresh, rewrite, report } = ctx;
  const weights = weightUses(ctx);
  const skip = (uses: Use[], reason: string) =>
    uses.forEach((u) => report.skipped.push({ node: nodeLabel(u.node), reason }));
  for (const { tensor, owner, uses } of weights.values()) {
    const w = tensor.name!;
    const dims = (tensor.dims ?? []).map(Number);
    let values: Float32Array;
    try {
      values = floatValues(tensor);
    } catch (e) {
      if (e instanceof OnnxFormatError) {
        skip(uses, e.message);
        continue;
      }
      throw e;
    }
    if (values.length < minElements) {
      skip(uses, `weight ${w} has ${values.length} elements (< ${minElements})`);
      continue;
    }
    // A weight shared by nodes that disagree on the channel axis gets one per-tensor scale.
    const axes = new Set(uses.map((u) => u.axis));
    const axis = axes.size === 1 ? uses[0]!.axis : null;
    const refusals = new Map(
      uses.map((u) => [u, dynamic ? dynamicRefusal(u.node, u.input, dims, opset) : 'weight-only mode']),
    );
    const converted = uses.filter((u) => refusals.get(u) === undefined);
    let q: Int8Array, scales: Float32Array;
    try {
      ({ q, scales } = quantizeWeights(values, dims, axis, converted.length ? 63 : 127));
    } catch (e) {
      if (e instanceof QuantizeError) {
        skip(uses, `weight ${w}: ${e.message}`);
        continue;
      }
      throw e;
    }
    const perChannel = axis !== null;
    const [qName, sName, zName] = [fresh(`${w}_quantized`), fresh(`${w}_scale`), fresh(`${w}_zero_point`)];
    const added = [
      rawTensor(qName, dims, ElemType.INT8, q),
      rawTensor(
        sName,
        perChannel ? [scales.length] : [],
        ElemType.FLOAT,
        perChannel ? scales : new Float32Array([scales[0]!]),
      ),
      rawTensor(zName, perChannel ? [scales.length] : [], ElemType.INT8, new Int8Array(perChannel ? scales.length : 1)),
    ];
    // The DequantizeLinear stays unless every reader of the weight became a MatMulInteger.
    const readers = (refs.get(tensor)?.length ?? 0) + (owner.graph.output ?? []).filter((o) => o.name === w).length;
    const dequantize =
      readers > converted.length
        ? node('DequantizeLinear', [qName, sName, zName], [w], perChannel ? { axis } : {}, fresh(`${w}_dequantize`))
        : undefined;
    rewrite.replaceInitializer(owner, w, added, dequantize);
    report.quantized.push({
      weight: w,
      graph: owner.path,
      nodes: uses.map((u) => nodeLabel(u.node)),
      axis,
      elements: values.length,
    });
    if (!dynamic) continue;
    for (const u of uses) {
      const refusal = refusals.get(u);
      if (refusal !== undefined)
        report.skipped.push({ node: nodeLabel(u.node), reason: `dynamic: ${refusal}; kept weight-only` });
      else
        rewrite.replaceNode(
          u.node,
          dynamicPlan(
            u.node,
            { q, dims, axis, qName, sName, zName, addInitializer: (t) => rewrite.addInitializers(owner, [t]) },
            fresh,
          ),
        );
    }
  }
  keptFloat(ctx, new Set(weights.keys()));
  if (opset < PER_CHANNEL_OPSET && report.quantized.length)
    report.notes.push(
      `opset ${opset}: one scale per weight tensor (per-channel DequantizeLinear needs opset ${PER_CHANNEL_OPSET})`,
    );
  if (!report.quantized.length)
    throw nothingToQuantize(report, `${WEIGHT_OPS.join('/')} weight initializer with ≥ ${minElements} float elements`);
}

/** Large float initializers that feed no weight input: listed in `skipped`, so a report says where the bytes stay. */
function keptFloat({ scopes, refs, minElements, report }: PlanContext, weights: Set<TensorProto>): void {
  for (const scope of scopes) {
    for (const t of scope.graph.initializer ?? []) {
      const elements = elementCount(t.dims);
      if (t.dataType !== ElemType.FLOAT || weights.has(t) || elements < minElements) continue;
      const readers = [...new Set((refs.get(t) ?? []).map((r) => `${r.node.opType} input ${r.input}`))];
      report.skipped.push({
        node: t.name!,
        reason: `${elements} float elements read as ${readers.join(', ') || 'nothing'}: not a weight input, kept fp32`,
      });
    }
  }
}
