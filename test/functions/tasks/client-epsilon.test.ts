/**
 * The client-level ε a DDGauss task reports is the privacy it gives (issue 31, point 3): a round's cohort is
 * whoever checks in first, not a sample the server drew, so there is no amplification by subsampling to claim —
 * 300 Sybil enrolments used to shrink the reported ε of the same three devices' round (q = devicesPerRound / enrolled).
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { type TaskStatus, ddgaussFor } from '../../../federated/aggregation/task-protocol.ts';
import { fromBase64, toBase64 } from '../../../federated/bytes.ts';
import { ddgaussEncode, ddgaussEpsilon } from '../../../federated/dp/distributed-dp.ts';
import { createIdentity } from '../../../federated/secagg/client.ts';
import { uniqueName } from '../helpers.ts';
import { SecAggDevice } from '../../drivers/secagg-device.ts';
import { D, TOKEN, edge, post, taskBody } from './fixtures.ts';

const settings = {
  distributedDp: { clip: 1, noiseMultiplier: 1 },
  serverOptimizer: { kind: 'fedavg', learningRate: 1 },
};

/** One published DDGauss round of three devices, after `sybils` more identities enrolled; its status. */
async function roundWith(sybils: number): Promise<TaskStatus> {
  const task = uniqueName('eps');
  const created = await post('/v1/tasks', taskBody(task, settings));
  expect(created.status, await created.clone().text()).toBe(201);
  for (let i = 0; i < sybils; i++) {
    const { publicKey } = await createIdentity(`sybil-${i}`);
    const res = await post(
      `/v1/tasks/${task}/devices`,
      { device: `sybil-${i}`, identityKey: toBase64(publicKey) },
      { Authorization: `Bearer ${TOKEN}` },
    );
    expect(res.status).toBe(201);
  }
  const devices = await Promise.all([0, 1, 2].map((i) => SecAggDevice.enrolled(edge, task, `dev-${i}`, TOKEN)));
  for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
  for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
  const info = await devices[0]!.info();
  for (const d of devices) {
    const words = await ddgaussEncode(new Float32Array(D).fill(0.01), info.distributedDp!, fromBase64(info.graphSeed));
    expect((await d.send(await d.masked(words))).status).toBe(202);
  }
  for (const d of devices) expect((await d.send(await d.unmask())).status).toBe(202);
  const s = (await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as TaskStatus;
  expect(s.history[0]).toMatchObject({ status: 'published' });
  expect(s.enrolledDevices).toBe(3 + sybils);
  return s;
}

describe('client-level ε', () => {
  it('is the same with 300 Sybil enrolments as without, and is the accountant’s with no subsampling (q = 1)', async () => {
    const honest = await roundWith(0);
    const attacked = await roundWith(300);
    expect(attacked.history[0]!.clientEpsilon).toBe(honest.history[0]!.clientEpsilon);
    const created = (await (await post('/v1/tasks', taskBody(uniqueName('eps-s'), settings))).json()) as {
      settings: Parameters<typeof ddgaussFor>[0];
    };
    const truth = ddgaussEpsilon({ params: ddgaussFor(created.settings)!, rounds: 1, sampleRate: 1, delta: 1e-5 });
    expect(honest.history[0]!.clientEpsilon).toBeCloseTo(truth, 9);
    expect(honest.distributedDp!.epsilon).toBeCloseTo(truth, 9);
  });
});
