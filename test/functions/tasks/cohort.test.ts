/**
 * A sampled round inside workerd (issue 31, point 3): the seed's commitment is shown while check-in is open, the
 * seed once it closed; of 20 devices that checked in, exactly those the seed draws (cohort.ts) are in the round and
 * the others are told they were not drawn; the round publishes and records how many checked in and were drawn.
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { cohortCommitment, drawn } from '../../../federated/aggregation/cohort.ts';
import type { RoundInfo, TaskStatus } from '../../../federated/aggregation/task-protocol.ts';
import { fromBase64, toBase64 } from '../../../federated/bytes.ts';
import { encodeUpdate } from '../../../federated/secagg/fixed-point.ts';
import { uniqueName } from '../helpers.ts';
import { SecAggDevice } from '../../drivers/secagg-device.ts';
import { D, TOKEN, edge, post, taskBody } from './fixtures.ts';

const N = 20;

describe('cohort sampling', () => {
  it('of 20 devices that check in, the round takes exactly those its committed seed draws', async () => {
    const task = uniqueName('cohort');
    const created = await post(
      '/v1/tasks',
      taskBody(task, {
        devicesPerRound: N,
        minDevices: 3,
        secagg: { neighbours: 2, threshold: 2 },
        cohort: { sampleRate: 0.5 },
        rounds: 1,
      }),
    );
    expect(created.status, await created.clone().text()).toBe(201);
    const info = async () => (await (await SELF.fetch(`http://edge/v1/tasks/${task}/round`)).json()) as RoundInfo;
    const open = await info();
    expect(open.cohort).toMatchObject({ sampleRate: 0.5, commitment: expect.any(String) });
    expect(open.cohort!.seed).toBeUndefined();
    const devices = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        SecAggDevice.enrolled(edge, task, `dev-${String(i).padStart(2, '0')}`, TOKEN),
      ),
    );
    for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
    const closed = await info();
    const seed = fromBase64(closed.cohort!.seed!);
    expect(toBase64(await cohortCommitment(seed))).toBe(open.cohort!.commitment);
    const inRound: SecAggDevice[] = [];
    for (const d of devices) {
      const res = await d.relayRes('broadcast');
      if (await drawn(seed, d.identity.id, 0.5)) {
        expect(res.status).toBe(200);
        inRound.push(d);
      } else {
        expect(res.status).toBe(422);
        expect(((await res.json()) as { error: string }).error).toMatch(/was not drawn into round 1's cohort/);
      }
    }
    // P(fewer than 3 of 20 drawn at q = 0.5) ≈ 2·10⁻⁴.
    expect(inRound.length).toBeGreaterThanOrEqual(3);
    for (const d of inRound) expect((await d.send(await d.share())).status).toBe(202);
    const fp = closed.fixedPoint;
    for (const d of inRound)
      expect((await d.send(await d.masked(encodeUpdate(new Float32Array(D).fill(0.01), 10, fp)))).status).toBe(202);
    for (const d of inRound) expect((await d.send(await d.unmask())).status).toBe(202);
    const s = (await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as TaskStatus;
    expect(s.history[0]).toMatchObject({
      status: 'published',
      cohort: { checkedIn: N, drawn: inRound.length },
      dropouts: 0,
    });
  });

  it('settings: a sample rate outside (0, 1) is refused', async () => {
    const res = await post('/v1/tasks', taskBody(uniqueName('cohort'), { cohort: { sampleRate: 1 } }));
    expect(res.status).toBe(400);
  });
});
