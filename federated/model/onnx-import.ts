/**
 * importOnnxWeights: the named float32 weights of an ONNX model that exportOnnx wrote for `spec` — so a served
 * fp32 version can seed a federated task or a fine-tuning run. Inverse of exportOnnx for initializers: dense
 * kernels are stored as-is ([in, out]); conv kernels come back from ONNX's [out, in, kh, kw] to tfjs's
 * [kh, kw, in, out].
 */
import { type ModelSpec, type NamedWeight, ModelSpecError, parameterShapes } from './model-spec.ts';
import { OnnxFormatError, decodeModel, floatValues } from './onnx-graph.ts';

function oihwToConvKernel(values: Float32Array, [kh, kw, cin, cout]: number[]): Float32Array {
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let i = 0; i < cin!; i++)
        for (let o = 0; o < cout!; o++)
          out[((y * kw! + x) * cin! + i) * cout! + o] = values[((o * cin! + i) * kh! + y) * kw! + x]!;
  return out;
}

export function importOnnxWeights(spec: ModelSpec, onnxBytes: Uint8Array): NamedWeight[] {
  const graph = decodeModel(onnxBytes).graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  return parameterShapes(spec).map(({ name, shape }) => {
    const t = inits.get(name);
    if (!t)
      throw new OnnxFormatError(`the model has no initializer '${name}' (quantized, or not exported for this spec?)`);
    const values = floatValues(t);
    const size = shape.reduce((a, b) => a * b, 1);
    if (values.length !== size)
      throw new ModelSpecError(`initializer '${name}' has ${values.length} values, the spec needs ${size}`);
    return { name, shape, values: name.endsWith('_conv2d/kernel') ? oihwToConvKernel(values, shape) : values };
  });
}
