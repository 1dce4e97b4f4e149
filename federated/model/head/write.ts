/**
 * writeHead: the original model bytes with the head's initializers holding new weights — same names, dims, data
 * types and layout (a transB or weight-on-the-left kernel stays [out, in]; Gemm alpha/beta are divided back out);
 * every other byte is copied (wire.ts). An int8 head weight (DequantizeLinear from `${w}_quantized`, zero point 0)
 * is quantized again per channel, symmetric, as federated/model/quantize.ts does: its int8 data and scales change.
 */
import { u8 } from '../../bytes.ts';
import { unflattenWeights } from '../flat-weights.ts';
import { ElemType } from '../onnx-graph.ts';
import { quantizeWeights } from '../quantize.ts';
import { type HeadPlace, readServedModel } from './detect.ts';
import { indexGraph } from './graph-index.ts';
import { HeadError } from './head-error.ts';
import { sameHeadIn } from './match.ts';
import { type StoredWeight, fromFedge, integerValues } from './weights.ts';
import { type TensorData, replaceInitializerData } from './wire.ts';

export function writeHead(original: Uint8Array, head: HeadPlace, flat: Float32Array): Uint8Array {
  const model = readServedModel(original);
  const here = sameHeadIn(model, head);
  if (flat.length !== here.flat.length)
    throw new HeadError(`the head has ${here.flat.length} weights, got ${flat.length}`);
  const bad = flat.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new HeadError(`weight ${bad} is ${flat[bad]}; head weights must be finite`);
  const ix = indexGraph(model.graph!, here.opset);
  const weights = unflattenWeights(here.spec, flat);
  const replacements = new Map<string, TensorData>();
  const put = (w: StoredWeight, values: Float32Array) => {
    const stored = fromFedge(values, w);
    const q = w.quantized;
    if (!q) return void replacements.set(w.name, { dataType: ElemType.FLOAT, bytes: u8(stored) });
    if (q.dataType !== ElemType.INT8)
      throw new HeadError(
        `weight '${w.name}' is dequantized from uint8 '${q.data}'; Fedge writes int8 (symmetric) weights only — write the fp32 copy and quantize it`,
      );
    if (q.zeroPoint && integerValues(ix.initializers.get(q.zeroPoint)!).some((z) => z !== 0))
      throw new HeadError(
        `weight '${w.name}': zero point '${q.zeroPoint}' is not 0; Fedge writes symmetric int8 weights only — write the fp32 copy and quantize it`,
      );
    const { q: data, scales } = quantizeWeights(stored, w.dims, q.axis);
    replacements.set(q.data, { dataType: ElemType.INT8, bytes: u8(data) });
    replacements.set(q.scale, { dataType: ElemType.FLOAT, bytes: u8(scales) });
  };
  here.layers.forEach((l, i) => {
    put(l.kernel, weights[2 * i]!.values);
    put(l.bias, weights[2 * i + 1]!.values);
  });
  return replaceInitializerData(original, replacements);
}
