/** Server optimizers (Reddi et al. 2021, Algorithm 2): each step checked against the update rule worked by hand. */
import { describe, expect, it } from 'vitest';
import { l2Norm, serverStep } from '../../../federated/aggregation/server-optimizer.ts';

describe('serverStep', () => {
  it('FedAvg adds η·Δ', () => {
    const w = Float32Array.of(1, 2);
    serverStep({ kind: 'fedavg', learningRate: 0.5 }, w, Float32Array.of(0.2, -0.4), {});
    expect([...w]).toEqual([expect.closeTo(1.1, 6), expect.closeTo(1.8, 6)]);
  });

  it('FedAvgM keeps a velocity across rounds: v₂ = β·Δ₁ + Δ₂', () => {
    const w = Float32Array.of(0);
    let state = serverStep({ kind: 'fedavgm', learningRate: 1, momentum: 0.9 }, w, Float32Array.of(1), {});
    state = serverStep({ kind: 'fedavgm', learningRate: 1, momentum: 0.9 }, w, Float32Array.of(1), state);
    expect(state.m![0]).toBeCloseTo(1.9, 6);
    expect(w[0]).toBeCloseTo(1 + 1.9, 6);
  });

  it('FedAdam: m = (1−β₁)Δ, v = (1−β₂)Δ², w += η·m/(√v + τ) on the first step', () => {
    const w = Float32Array.of(0, 0);
    const state = serverStep(
      { kind: 'fedadam', learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
      w,
      Float32Array.of(2, -0.5),
      {},
    );
    expect(state.m![0]).toBeCloseTo(0.2, 6);
    expect(state.v![0]).toBeCloseTo(0.04, 6);
    expect(w[0]).toBeCloseTo((0.1 * 0.2) / (Math.sqrt(0.04) + 1e-3), 5);
    expect(w[1]).toBeCloseTo((0.1 * -0.05) / (Math.sqrt(0.0025) + 1e-3), 5);
  });

  it('refuses an update of the wrong length; l2Norm is the Euclidean norm', () => {
    expect(() => serverStep({ kind: 'fedavg' }, new Float32Array(3), new Float32Array(2), {})).toThrow(
      /2 values, the model 3/,
    );
    expect(l2Norm(Float32Array.of(3, 4))).toBe(5);
  });
});
