/**
 * Poisson cohort sampling (federated/aggregation/cohort.ts): each device is drawn with probability q, independently
 * of the others and of how many enrol; the draw is checkable against the commitment; the client-level ε amplifies by
 * q exactly when the task samples, and never otherwise.
 */
import { describe, expect, it } from 'vitest';
import { cohortCommitment, cohortProblem, drawCohort, drawn } from '../../../federated/aggregation/cohort.ts';
import { type TaskSettings, clientEpsilon, ddgaussFor } from '../../../federated/aggregation/task-protocol.ts';
import { ddgaussEpsilon } from '../../../federated/dp/distributed-dp.ts';
import { MODEL_SPEC_FORMAT } from '../../../federated/model/model-spec.ts';

const seed = new Uint8Array(32).fill(9);

describe('cohort sampling', () => {
  it('draws each of 20,000 devices with probability q (within 4 standard deviations)', async () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `device-${i}`);
    for (const q of [0.1, 0.5]) {
      const n = (await drawCohort(seed, ids, q)).length;
      expect(Math.abs(n - q * ids.length)).toBeLessThan(4 * Math.sqrt(ids.length * q * (1 - q)));
    }
    // Another seed, another cohort.
    const a = await drawCohort(seed, ids.slice(0, 200), 0.5);
    const b = await drawCohort(new Uint8Array(32).fill(10), ids.slice(0, 200), 0.5);
    expect(a).not.toEqual(b);
  });

  it('a device checks the revealed seed against the commitment and the roster against the draw', async () => {
    const commitment = await cohortCommitment(seed);
    const roster = await drawCohort(seed, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], 0.5);
    expect(await cohortProblem(seed, commitment, 0.5, roster)).toBeUndefined();
    expect(await cohortProblem(new Uint8Array(32), commitment, 0.5, roster)).toMatch(/not the one committed/);
    const notDrawn = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].find((d) => !roster.includes(d))!;
    expect(await drawn(seed, notDrawn, 0.5)).toBe(false);
    expect(await cohortProblem(seed, commitment, 0.5, [...roster, notDrawn])).toMatch(/was not drawn/);
  });

  it('client-level ε amplifies by the sample rate only when the task samples', () => {
    const s = {
      spec: {
        format: MODEL_SPEC_FORMAT,
        name: 't',
        inputShape: [4],
        layers: [{ type: 'dense', units: 3, activation: 'softmax' }],
        inputName: 'input',
        outputName: 'p',
      },
      minDevices: 3,
      distributedDp: { clip: 1, noiseMultiplier: 1, delta: 1e-5 },
    } as unknown as TaskSettings;
    const params = ddgaussFor(s)!;
    const unsampled = clientEpsilon(s, 10)!;
    expect(unsampled).toBeCloseTo(ddgaussEpsilon({ params, rounds: 10, sampleRate: 1, delta: 1e-5 }), 9);
    const sampled = clientEpsilon({ ...s, cohort: { sampleRate: 0.1 } }, 10)!;
    expect(sampled).toBeCloseTo(ddgaussEpsilon({ params, rounds: 10, sampleRate: 0.1, delta: 1e-5 }), 9);
    expect(sampled).toBeLessThan(unsampled);
  });
});
