/**
 * A model spec as explicit tfjs variables with a hand-written forward pass, and the per-example clipped gradient
 * sums DP-SGD needs (Abadi et al., CCS 2016, §3.1).
 *
 * Two rules, chosen from which layers are trained:
 * - **Ghost norms** when every trained layer is dense (frozen layers in front — conv, pooling — are fine): the
 *   per-example gradient of a dense layer is the outer product a_i·δ_iᵀ, so its norm is ‖a_i‖·‖δ_i‖ without ever
 *   forming it (Goodfellow 2015, "Efficient per-example gradient computations"), and the clipped sum
 *   Σ_i c_i a_i δ_iᵀ is one matMul, Aᵀ·(c ⊙ Δ). The backward pass of the dense tail is written out here.
 * - **Exact per-example autodiff** otherwise (a trained conv layer): each example's gradient by tfjs autodiff,
 *   clipped and summed. Exact but a loop over the batch — 5–10× slower than the ghost rule.
 * Dropout is the identity here: DP training does not use it (its randomness is not part of the analysis).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../federated/model/tfjs-loader.ts';
import type { Activation, ModelSpec, NamedWeight } from '../../federated/model/model-spec.ts';
import { parameterShapes } from '../../federated/model/model-spec.ts';

interface ParamLayer {
  activation: Activation;
  kernel: TF.Variable;
  bias: TF.Variable;
  trainable: boolean;
}
export type NetLayer =
  | ({ kind: 'dense' } & ParamLayer)
  | ({ kind: 'conv2d'; strides: number; padding: 'valid' | 'same' } & ParamLayer)
  | { kind: 'maxPool2d'; poolSize: number; strides: number }
  | { kind: 'flatten' };

export interface Network {
  inputShape: number[];
  layers: NetLayer[];
  /** Index in `layers` of the first trained layer: everything before it is a fixed feature extractor. */
  firstTrainable: number;
  /** How per-example gradients are clipped: 'ghost' (dense tail) or 'per-example' (autodiff loop). */
  clipping: 'ghost' | 'per-example';
}

export class UnsupportedSpec extends Error {
  override name = 'UnsupportedSpec';
}

type WithParams = Extract<NetLayer, { kernel: TF.Variable }>;
const hasParams = (l: NetLayer): l is WithParams => 'kernel' in l;

/** The network of `spec` with `weights` (parameterShapes order); only the last `trainableLast` layers with parameters train. */
export function createNetwork(spec: ModelSpec, weights: NamedWeight[], trainableLast: number): Network {
  const shapes = parameterShapes(spec);
  if (weights.length !== shapes.length)
    throw new UnsupportedSpec(`expected ${shapes.length} weight tensors, got ${weights.length}`);
  const last = spec.layers[spec.layers.length - 1];
  if (last?.type !== 'dense' || last.activation !== 'softmax')
    throw new UnsupportedSpec('the last layer must be dense with softmax (cross-entropy training)');
  const paramLayers = spec.layers.filter((l) => l.type === 'dense' || l.type === 'conv2d').length;
  let w = 0,
    p = 0;
  const variable = () => tf.variable(tf.tensor(weights[w]!.values, weights[w++]!.shape, 'float32'));
  const layers: NetLayer[] = [];
  spec.layers.forEach((l, i) => {
    if ((l.type === 'dense' || l.type === 'conv2d') && l.activation === 'softmax' && i !== spec.layers.length - 1)
      throw new UnsupportedSpec(`layers[${i}]: softmax is only supported as the output activation`);
    switch (l.type) {
      case 'dense':
      case 'conv2d': {
        const param = {
          activation: l.activation,
          kernel: variable(),
          bias: variable(),
          trainable: p++ >= paramLayers - trainableLast,
        };
        layers.push(
          l.type === 'dense'
            ? { kind: 'dense', ...param }
            : { kind: 'conv2d', strides: l.strides ?? 1, padding: l.padding, ...param },
        );
        break;
      }
      case 'maxPool2d':
        layers.push({ kind: 'maxPool2d', poolSize: l.poolSize, strides: l.strides ?? l.poolSize });
        break;
      case 'flatten':
        layers.push({ kind: 'flatten' });
        break;
      case 'dropout':
        break;
    }
  });
  const firstTrainable = layers.findIndex((l) => hasParams(l) && l.trainable);
  const ghost = layers.slice(firstTrainable).every((l) => l.kind === 'dense' || l.kind === 'flatten');
  return { inputShape: spec.inputShape, layers, firstTrainable, clipping: ghost ? 'ghost' : 'per-example' };
}

export function trainableVariables(net: Network): TF.Variable[] {
  return net.layers
    .filter(hasParams)
    .filter((l) => l.trainable)
    .flatMap((l) => [l.kernel, l.bias]);
}

export function allVariables(net: Network): TF.Variable[] {
  return net.layers.filter(hasParams).flatMap((l) => [l.kernel, l.bias]);
}

export function disposeNetwork(net: Network): void {
  allVariables(net).forEach((v) => v.dispose());
}

function activate<T extends TF.Tensor>(z: T, act: Activation): T {
  switch (act) {
    case 'relu':
      return tf.relu(z);
    case 'sigmoid':
      return tf.sigmoid(z);
    case 'tanh':
      return tf.tanh(z);
    case 'softmax':
      return tf.softmax(z);
    case 'linear':
      return z;
  }
}

/** dL/dz from dL/da for the hidden activations (softmax only ever sits at the output, handled with the loss). */
function activationGrad(dA: TF.Tensor2D, z: TF.Tensor2D, a: TF.Tensor2D, act: Activation): TF.Tensor2D {
  switch (act) {
    case 'relu':
      return tf.mul(dA, tf.step(z));
    case 'sigmoid':
      return tf.mul(dA, tf.mul(a, tf.sub(1, a)));
    case 'tanh':
      return tf.mul(dA, tf.sub(1, tf.square(a)));
    case 'linear':
    case 'softmax':
      return dA; // softmax is refused for hidden layers in createNetwork
  }
}

function applyLayer(l: NetLayer, a: TF.Tensor): TF.Tensor {
  switch (l.kind) {
    case 'dense':
      return activate(tf.add(tf.matMul(a as TF.Tensor2D, l.kernel as TF.Tensor2D), l.bias), l.activation);
    case 'conv2d':
      return activate(
        tf.add(tf.conv2d(a as TF.Tensor4D, l.kernel as TF.Tensor4D, l.strides, l.padding), l.bias),
        l.activation,
      );
    case 'maxPool2d':
      return tf.maxPool(a as TF.Tensor4D, l.poolSize, l.strides, 'valid');
    case 'flatten':
      return tf.reshape(a, [a.shape[0]!, -1]);
  }
}

/** Layers [from, to) applied to a batch of layer `from`'s inputs. */
function run(net: Network, a: TF.Tensor, from: number, to: number): TF.Tensor {
  for (let j = from; j < to; j++) a = applyLayer(net.layers[j]!, a);
  return a;
}

const asInput = (net: Network, x: TF.Tensor2D): TF.Tensor => tf.reshape(x, [x.shape[0], ...net.inputShape]);

/** Class probabilities [n, classes] for examples x [n, features]. */
export function forward(net: Network, x: TF.Tensor2D): TF.Tensor2D {
  return tf.tidy(() => run(net, asInput(net, x), 0, net.layers.length) as TF.Tensor2D);
}

/**
 * The fixed layers' output for examples x [n, features] — the trained layers' input. Deterministic, so a training
 * run computes it once for all its examples instead of once per step (chunked to bound peak memory).
 */
export function frozenFeatures(net: Network, x: TF.Tensor2D, chunk = 1024): TF.Tensor {
  return tf.tidy(() => {
    const parts: TF.Tensor[] = [];
    for (let i = 0; i < x.shape[0]; i += chunk) {
      const rows = tf.slice(x, [i, 0], [Math.min(chunk, x.shape[0] - i), x.shape[1]]);
      parts.push(run(net, asInput(net, rows), 0, net.firstTrainable));
    }
    return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  });
}

export interface ClippedGradients {
  /** Σ_i c_i g_i per trainable variable, in trainableVariables order (kernel, bias, …). */
  sums: TF.Tensor[];
  /** Mean cross-entropy of the batch (before clipping), for progress reports. */
  loss: number;
}

const crossEntropy = (p: TF.Tensor, onehot: TF.Tensor): TF.Scalar =>
  tf.neg(tf.sum(tf.mul(onehot, tf.log(tf.add(p, 1e-7)))));

/**
 * Per-example clipped gradient sums of softmax cross-entropy for a batch, given as its {@link frozenFeatures}.
 * `clip` = Infinity gives the plain (unclipped) gradient sum, computed the same way, so DP and non-DP training
 * share one code path.
 */
export function clippedGradientSums(net: Network, x: TF.Tensor, labels: TF.Tensor1D, clip: number): ClippedGradients {
  return net.clipping === 'ghost'
    ? ghostClippedSums(net, x, labels, clip)
    : perExampleClippedSums(net, x, labels, clip);
}

function ghostClippedSums(net: Network, x: TF.Tensor, labels: TF.Tensor1D, clip: number): ClippedGradients {
  return tf.tidy(() => {
    let a = tf.reshape(x, [x.shape[0]!, -1]) as TF.Tensor2D; // only dense layers (and flatten) from here on
    const dense = net.layers
      .slice(net.firstTrainable)
      .filter((l): l is Extract<NetLayer, { kind: 'dense' }> => l.kind === 'dense');
    const inputs: TF.Tensor2D[] = [],
      pre: TF.Tensor2D[] = [],
      post: TF.Tensor2D[] = [];
    for (const l of dense) {
      inputs.push(a);
      const z = tf.add(tf.matMul(a, l.kernel as TF.Tensor2D), l.bias) as TF.Tensor2D;
      a = activate(z, l.activation);
      pre.push(z);
      post.push(a);
    }
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), a.shape[1]!) as TF.Tensor2D;
    const loss = crossEntropy(a, onehot).dataSync()[0]! / x.shape[0]!;
    // Backward: δ at the output is p − y for softmax + cross-entropy (per example, not averaged).
    const deltas: TF.Tensor2D[] = new Array(dense.length);
    let delta = tf.sub(a, onehot) as TF.Tensor2D;
    for (let j = dense.length - 1; j >= 0; j--) {
      deltas[j] = delta;
      if (j > 0)
        delta = activationGrad(
          tf.matMul(delta, dense[j]!.kernel as TF.Tensor2D, false, true),
          pre[j - 1]!,
          post[j - 1]!,
          dense[j - 1]!.activation,
        );
    }
    // Ghost norms: ‖g_i‖² = Σ_layers (‖a_i‖² + 1)·‖δ_i‖²  (kernel a_iδ_iᵀ plus bias δ_i)
    let sq = tf.zeros([x.shape[0]!]) as TF.Tensor1D;
    dense.forEach(
      (_, j) =>
        (sq = tf.add(sq, tf.mul(tf.add(tf.sum(tf.square(inputs[j]!), 1), 1), tf.sum(tf.square(deltas[j]!), 1)))),
    );
    const scale = clipScale(tf.sqrt(sq), clip);
    const sums = dense.flatMap((_, j) => {
      const scaled = tf.mul(deltas[j]!, tf.expandDims(scale, 1)) as TF.Tensor2D;
      return [tf.matMul(inputs[j]!, scaled, true, false), tf.sum(scaled, 0)];
    });
    return { sums, loss };
  });
}

function clipScale(norms: TF.Tensor, clip: number): TF.Tensor {
  return Number.isFinite(clip) ? tf.minimum(1, tf.div(clip, tf.maximum(norms, 1e-12))) : tf.onesLike(norms);
}

function perExampleClippedSums(net: Network, x: TF.Tensor, labels: TF.Tensor1D, clip: number): ClippedGradients {
  const vars = trainableVariables(net);
  const n = x.shape[0]!;
  const classes = net.layers.findLast(hasParams)!.bias.shape[0]!;
  const onehot = tf.tidy(() => tf.oneHot(tf.cast(labels, 'int32'), classes));
  const lossOf = (xs: TF.Tensor, ys: TF.Tensor) => () =>
    crossEntropy(run(net, xs, net.firstTrainable, net.layers.length), ys);
  let sums: TF.Tensor[];
  let total = 0;
  if (!Number.isFinite(clip)) {
    // No clipping: one batched gradient of the summed loss.
    const { value, grads } = tf.variableGrads(lossOf(x, onehot), vars);
    sums = vars.map((v) => grads[v.name]!);
    total = value.dataSync()[0]!;
    value.dispose();
  } else {
    sums = vars.map((v) => tf.zerosLike(v));
    const lossSum = tf.variable(tf.scalar(0), false);
    for (let i = 0; i < n; i++) {
      const next = tf.tidy(() => {
        const xi = tf.slice(x, [i], [1]);
        const yi = tf.slice(onehot, [i], [1]);
        const { value, grads } = tf.variableGrads(lossOf(xi, yi), vars);
        lossSum.assign(tf.add(lossSum, value));
        const g = vars.map((v) => grads[v.name]!);
        const scale = clipScale(tf.sqrt(tf.addN(g.map((t) => tf.sum(tf.square(t))))), clip);
        return g.map((t, k) => tf.add(sums[k]!, tf.mul(t, scale)));
      });
      sums.forEach((s) => s.dispose());
      sums = next;
    }
    total = lossSum.dataSync()[0]!;
    lossSum.dispose();
  }
  onehot.dispose();
  return { sums, loss: total / n };
}
