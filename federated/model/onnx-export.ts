/**
 * exportOnnx: model spec + named float32 weights -> ONNX bytes (opset 17) for serving.
 * The graph takes activations in the tfjs layout (NHWC), so devices and the edge feed identical data;
 * convolutions run in ONNX's NCHW between two Transposes.
 */
import { type ModelSpec, type NamedWeight, layerOutputShapes, parameterShapes, ModelSpecError } from './model-spec.ts';
import { featurizersProp } from './featurizers.ts';
import { ElemType, type NodeProto, type TensorProto, encodeModel, floatTensor, node, valueInfo } from './onnx-graph.ts';

const ACTIVATION_OP = { relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh', softmax: 'Softmax' } as const;

/** tfjs conv kernel [kh, kw, in, out] -> ONNX [out, in, kh, kw]. */
function convKernelToOihw(values: Float32Array, [kh, kw, cin, cout]: number[]): Float32Array {
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh!; y++)
    for (let x = 0; x < kw!; x++)
      for (let i = 0; i < cin!; i++)
        for (let o = 0; o < cout!; o++)
          out[((o * cin! + i) * kh! + y) * kw! + x] = values[((y * kw! + x) * cin! + i) * cout! + o]!;
  return out;
}

/** TensorFlow "same" padding: the extra pixel goes after (bottom/right). */
function samePads(n: number, k: number, s: number): [number, number] {
  const total = Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export function exportOnnx(
  spec: ModelSpec,
  weights: NamedWeight[],
  opts: { metadata?: Record<string, string> } = {},
): Uint8Array {
  const params = parameterShapes(spec);
  if (weights.length !== params.length)
    throw new ModelSpecError(`exportOnnx: expected ${params.length} weight tensors, got ${weights.length}`);
  const byName = new Map(weights.map((w) => [w.name, w]));
  const weight = (name: string) => {
    const w = byName.get(name);
    if (!w) throw new ModelSpecError(`exportOnnx: missing weight ${name}`);
    return w;
  };
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const shapes = layerOutputShapes(spec);
  let current = spec.inputName;
  let shape = spec.inputShape;
  let nchw = false; // whether `current` is in NCHW layout
  const toNhwc = () => {
    if (!nchw) return;
    nodes.push(node('Transpose', [current], [`${current}_nhwc`], { perm: [0, 2, 3, 1] }));
    current = `${current}_nhwc`;
    nchw = false;
  };
  const activate = (i: number, act: string, out: string) => {
    if (act === 'linear') return out;
    const op = ACTIVATION_OP[act as keyof typeof ACTIVATION_OP];
    if (!op) throw new ModelSpecError(`layers[${i}]: unknown activation ${act}`);
    nodes.push(node(op, [out], [`${out}_${act}`], op === 'Softmax' ? { axis: -1 } : {}));
    return `${out}_${act}`;
  };
  spec.layers.forEach((layer, i) => {
    const last = i === spec.layers.length - 1;
    if (layer.type === 'dense') {
      toNhwc();
      const k = weight(`${i}_dense/kernel`),
        b = weight(`${i}_dense/bias`);
      inits.push(floatTensor(k.name, k.shape, k.values), floatTensor(b.name, b.shape, b.values));
      nodes.push(node('Gemm', [current, k.name, b.name], [`l${i}_dense`]));
      current = activate(i, layer.activation, `l${i}_dense`);
    } else if (layer.type === 'conv2d') {
      if (!nchw) {
        nodes.push(node('Transpose', [current], [`${current}_nchw`], { perm: [0, 3, 1, 2] }));
        current = `${current}_nchw`;
        nchw = true;
      }
      const k = weight(`${i}_conv2d/kernel`),
        b = weight(`${i}_conv2d/bias`);
      const [kh, kw, cin, cout] = k.shape as [number, number, number, number];
      inits.push(
        floatTensor(k.name, [cout, cin, kh, kw], convKernelToOihw(k.values, k.shape)),
        floatTensor(b.name, b.shape, b.values),
      );
      const s = layer.strides ?? 1;
      const [ph0, ph1] = layer.padding === 'same' ? samePads(shape[0]!, kh, s) : [0, 0];
      const [pw0, pw1] = layer.padding === 'same' ? samePads(shape[1]!, kw, s) : [0, 0];
      nodes.push(
        node('Conv', [current, k.name, b.name], [`l${i}_conv`], {
          kernel_shape: [kh, kw],
          strides: [s, s],
          pads: [ph0, pw0, ph1, pw1],
        }),
      );
      current = activate(i, layer.activation, `l${i}_conv`);
    } else if (layer.type === 'maxPool2d') {
      if (!nchw) throw new ModelSpecError(`layers[${i}]: maxPool2d must follow a conv2d`);
      const s = layer.strides ?? layer.poolSize;
      nodes.push(
        node('MaxPool', [current], [`l${i}_pool`], { kernel_shape: [layer.poolSize, layer.poolSize], strides: [s, s] }),
      );
      current = `l${i}_pool`;
    } else if (layer.type === 'dropout') {
      // Inference: dropout is the identity, so it adds no node.
    } else {
      toNhwc();
      nodes.push(node('Flatten', [current], [`l${i}_flat`], { axis: 1 }));
      current = `l${i}_flat`;
    }
    shape = shapes[i]!;
    if (last) toNhwc();
  });
  nodes.push(node('Identity', [current], [spec.outputName]));
  const graph = {
    name: spec.name,
    node: nodes,
    initializer: inits,
    input: [valueInfo(spec.inputName, ElemType.FLOAT, ['batch', ...spec.inputShape])],
    output: [valueInfo(spec.outputName, ElemType.FLOAT, ['batch', ...shape])],
  };
  // A text model declares its featurizer, so the edge and LocalModel take raw text for its input (featurizers.ts).
  const text = spec.features ? featurizersProp({ [spec.inputName]: spec.features }) : {};
  return encodeModel(graph, {
    metadata: {
      'fedge.spec': JSON.stringify(spec),
      'fedge.labels': JSON.stringify(spec.labels),
      ...text,
      ...opts.metadata,
    },
  });
}
