/**
 * A model spec of dense layers (plus flatten/dropout, which are reshapes or no-ops in DP training) as explicit
 * tfjs variables with a hand-written forward and backward pass. Writing the backward pass out is what makes
 * DP-SGD's per-example clipping cheap: the per-example gradient of a dense layer is the outer product a_i·δ_iᵀ, so
 * its norm is ‖a_i‖·‖δ_i‖ without ever forming it ("ghost norms"; Goodfellow 2015, "Efficient per-example gradient
 * computations"), and the clipped sum Σ_i c_i a_i δ_iᵀ is one matMul, Aᵀ·(c ⊙ Δ).
 */
import * as tf from '@tensorflow/tfjs';
import type { Activation, ModelSpec, NamedWeight } from '../../federated/model/model-spec.ts';
import { parameterShapes } from '../../federated/model/model-spec.ts';

export interface DenseLayerVars {
  kernel: tf.Variable;
  bias: tf.Variable;
  activation: Activation;
  trainable: boolean;
}

export class UnsupportedForGhostClipping extends Error {
  override name = 'UnsupportedForGhostClipping';
}

/** The dense layers of a spec, or throws when the spec has layers ghost clipping has no rule for (conv2d, pooling). */
export function denseLayersOf(spec: ModelSpec): { units: number; activation: Activation }[] {
  const out: { units: number; activation: Activation }[] = [];
  spec.layers.forEach((l, i) => {
    if (l.type === 'dense') out.push({ units: l.units, activation: l.activation });
    else if (l.type !== 'flatten' && l.type !== 'dropout') throw new UnsupportedForGhostClipping(`layers[${i}] is ${l.type}: per-example clipping by ghost norms covers dense layers only`);
  });
  const last = out[out.length - 1];
  if (!last || last.activation !== 'softmax') throw new UnsupportedForGhostClipping('the last layer must be dense with softmax (cross-entropy training)');
  return out;
}

export function createDenseVars(spec: ModelSpec, weights: NamedWeight[], trainableLast: number): DenseLayerVars[] {
  const layers = denseLayersOf(spec);
  const shapes = parameterShapes(spec);
  if (weights.length !== shapes.length) throw new Error(`expected ${shapes.length} weight tensors, got ${weights.length}`);
  return layers.map((l, j) => ({
    kernel: tf.variable(tf.tensor(weights[2 * j]!.values, weights[2 * j]!.shape, 'float32')),
    bias: tf.variable(tf.tensor(weights[2 * j + 1]!.values, weights[2 * j + 1]!.shape, 'float32')),
    activation: l.activation,
    trainable: j >= layers.length - trainableLast,
  }));
}

function activate(z: tf.Tensor2D, act: Activation): tf.Tensor2D {
  switch (act) {
    case 'relu': return tf.relu(z);
    case 'sigmoid': return tf.sigmoid(z);
    case 'tanh': return tf.tanh(z);
    case 'softmax': return tf.softmax(z);
    case 'linear': return z;
  }
}

/** dL/dz from dL/da for the hidden activations (softmax only ever sits at the output, handled with the loss). */
function activationGrad(dA: tf.Tensor2D, z: tf.Tensor2D, a: tf.Tensor2D, act: Activation): tf.Tensor2D {
  switch (act) {
    case 'relu': return tf.mul(dA, tf.step(z));
    case 'sigmoid': return tf.mul(dA, tf.mul(a, tf.sub(1, a)));
    case 'tanh': return tf.mul(dA, tf.sub(1, tf.square(a)));
    case 'linear': return dA;
    case 'softmax': throw new UnsupportedForGhostClipping('softmax is only supported as the output activation');
  }
}

export function forward(vars: DenseLayerVars[], x: tf.Tensor2D): tf.Tensor2D {
  let a = x;
  for (const l of vars) a = activate(tf.add(tf.matMul(a, l.kernel), l.bias), l.activation);
  return a;
}

export interface ClippedGradients {
  /** Σ_i c_i g_i per trainable variable, in `vars` order (kernel, bias, …). */
  sums: tf.Tensor[];
  /** Mean cross-entropy of the batch (before clipping), for progress reports. */
  loss: number;
}

/**
 * Per-example clipped gradient sums of softmax cross-entropy for a batch. `clip` = Infinity gives the plain
 * (unclipped) gradient sum, computed the same way, so DP and non-DP training share one code path.
 */
export function clippedGradientSums(vars: DenseLayerVars[], x: tf.Tensor2D, labels: tf.Tensor1D, clip: number): ClippedGradients {
  return tf.tidy(() => {
    const inputs: tf.Tensor2D[] = [];
    const pre: tf.Tensor2D[] = [];
    const post: tf.Tensor2D[] = [];
    let a = x;
    for (const l of vars) {
      inputs.push(a);
      const z = tf.add(tf.matMul(a, l.kernel), l.bias) as tf.Tensor2D;
      a = activate(z, l.activation);
      pre.push(z);
      post.push(a);
    }
    const classes = vars[vars.length - 1]!.kernel.shape[1]!;
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), classes) as tf.Tensor2D;
    const loss = tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.log(tf.add(a, 1e-7))), 1))).dataSync()[0]!;
    // Backward: δ at the output is p − y for softmax + cross-entropy (per example, not averaged).
    const deltas: (tf.Tensor2D | undefined)[] = new Array(vars.length);
    let delta = tf.sub(a, onehot) as tf.Tensor2D;
    const firstTrainable = vars.findIndex((l) => l.trainable);
    for (let j = vars.length - 1; j >= firstTrainable; j--) {
      deltas[j] = delta;
      if (j > firstTrainable) delta = activationGrad(tf.matMul(delta, vars[j]!.kernel, false, true), pre[j - 1]!, post[j - 1]!, vars[j - 1]!.activation);
    }
    // Ghost norms: ‖g_i‖² = Σ_layers (‖a_i‖² + 1)·‖δ_i‖²  (kernel a_iδ_iᵀ plus bias δ_i)
    let sq = tf.zeros([x.shape[0]]) as tf.Tensor1D;
    for (let j = firstTrainable; j < vars.length; j++) {
      const aNorm = tf.sum(tf.square(inputs[j]!), 1);
      const dNorm = tf.sum(tf.square(deltas[j]!), 1);
      sq = tf.add(sq, tf.mul(tf.add(aNorm, 1), dNorm));
    }
    const norms = tf.sqrt(sq);
    const scale = Number.isFinite(clip) ? tf.minimum(1, tf.div(clip, tf.maximum(norms, 1e-12))) : tf.onesLike(norms);
    const sums: tf.Tensor[] = [];
    for (let j = firstTrainable; j < vars.length; j++) {
      const scaled = tf.mul(deltas[j]!, tf.expandDims(scale, 1)) as tf.Tensor2D;
      sums.push(tf.matMul(inputs[j]!, scaled, true, false), tf.sum(scaled, 0));
    }
    return { sums, loss };
  });
}
