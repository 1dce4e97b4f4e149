/**
 * Server optimizers for federated averaging: the round's aggregate Δ = weighted mean of (local − global) weights
 * is treated as a pseudo-gradient (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2).
 * - FedAvg (McMahan et al., AISTATS 2017): w ← w + η·Δ (η = 1 is plain model averaging).
 * - FedAvgM (Hsu et al. 2019, server momentum): v ← β·v + Δ; w ← w + η·v.
 * - FedAdam (Reddi et al. 2021): m ← β₁m + (1−β₁)Δ; v ← β₂v + (1−β₂)Δ²; w ← w + η·m / (√v + τ).
 * State is plain Float32Arrays so a task can persist it next to the weights.
 */
export type ServerOptimizerConfig =
  | { kind: 'fedavg'; learningRate?: number }
  | { kind: 'fedavgm'; learningRate?: number; momentum?: number }
  | { kind: 'fedadam'; learningRate?: number; beta1?: number; beta2?: number; tau?: number };

export interface ServerOptimizerState {
  /** FedAvgM velocity or FedAdam first moment; FedAdam second moment. Empty until the first step. */
  m?: Float32Array;
  v?: Float32Array;
}

/** Applies one round's mean update Δ to `weights` in place; returns the new optimizer state. */
export function serverStep(
  cfg: ServerOptimizerConfig,
  weights: Float32Array,
  delta: Float32Array,
  state: ServerOptimizerState,
): ServerOptimizerState {
  if (delta.length !== weights.length)
    throw new RangeError(`update has ${delta.length} values, the model ${weights.length}`);
  const d = weights.length;
  switch (cfg.kind) {
    case 'fedavg': {
      const lr = cfg.learningRate ?? 1;
      for (let i = 0; i < d; i++) weights[i]! += lr * delta[i]!;
      return state;
    }
    case 'fedavgm': {
      const lr = cfg.learningRate ?? 1,
        beta = cfg.momentum ?? 0.9;
      const m = state.m ?? new Float32Array(d);
      for (let i = 0; i < d; i++) {
        m[i] = beta * m[i]! + delta[i]!;
        weights[i]! += lr * m[i]!;
      }
      return { m };
    }
    case 'fedadam': {
      const lr = cfg.learningRate ?? 0.01,
        b1 = cfg.beta1 ?? 0.9,
        b2 = cfg.beta2 ?? 0.99,
        tau = cfg.tau ?? 1e-3;
      const m = state.m ?? new Float32Array(d),
        v = state.v ?? new Float32Array(d);
      for (let i = 0; i < d; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * delta[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * delta[i]! * delta[i]!;
        weights[i]! += (lr * m[i]!) / (Math.sqrt(v[i]!) + tau);
      }
      return { m, v };
    }
  }
}

/** L2 norm of a vector (the update norm a task reports per round). */
export function l2Norm(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}
