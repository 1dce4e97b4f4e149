/**
 * What the task route tests share: a tiny spec and its weights, a valid create body, JSON posts and error checks, and
 * the Worker as the device driver (test/drivers/secagg-device.ts) reaches it, with a round run up to the unmask stage.
 */
import { SELF } from 'cloudflare:test';
import { expect } from 'vitest';
import { TINY_D, tiny } from '../../fixtures/tiny-spec.ts';
import { toBase64 } from '../../../federated/bytes.ts';
import { encodeUpdate } from '../../../federated/secagg/fixed-point.ts';
import { type Edge, SecAggDevice } from '../../drivers/secagg-device.ts';
import { ADMIN } from '../helpers.ts';

export { tiny };
export const D = TINY_D;
export const weights = toBase64(new Uint8Array(new Float32Array(D).fill(0.1).buffer));
export const TOKEN = 'enroll-0123456789abcdef';

/** A create-task body that passes every check: 3 devices per round, k = 2, t = 2. */
export const taskBody = (task: string, over: Record<string, unknown> = {}) => ({
  task,
  model: task,
  spec: tiny,
  weights,
  rounds: 2,
  devicesPerRound: 3,
  minDevices: 3,
  secagg: { neighbours: 2, threshold: 2 },
  stageSeconds: 600,
  update: { clip: 1, maxExamples: 10 },
  enrollmentToken: TOKEN,
  ...over,
});

export const post = (path: string, json: unknown, headers: Record<string, string> = ADMIN) =>
  SELF.fetch(`http://edge${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof json === 'string' ? json : JSON.stringify(json),
  });

export async function expectError(res: Response | Promise<Response>, status: number, pattern: RegExp) {
  const r = await res;
  const b = (await r.json()) as { error?: string };
  expect({ status: r.status, error: b.error }).toMatchObject({ status, error: expect.stringMatching(pattern) });
}

/** The Worker under test, for the device driver: SELF's fetch, at any host. */
export const edge: Edge = { fetch: SELF.fetch.bind(SELF), url: 'http://edge' };

/** Runs a round up to the unmask messages; returns the devices and each one's unmask message. */
export async function upToUnmask(task: string, n: number, round = 1) {
  // Fresh devices each round (dev-0… in round 1, as the tests name them).
  const prefix = round === 1 ? 'dev' : `r${round}-dev`;
  const devices = await Promise.all(
    Array.from({ length: n }, (_, i) => SecAggDevice.enrolled(edge, task, `${prefix}-${i}`, TOKEN)),
  );
  for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
  for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
  const info = await devices[0]!.info();
  for (const [i, d] of devices.entries())
    expect(
      (await d.send(await d.masked(encodeUpdate(new Float32Array(D).fill(0.01 * (i + 1)), 10, info.fixedPoint))))
        .status,
    ).toBe(202);
  const unmasks = await Promise.all(devices.map((d) => d.unmask()));
  return { devices, unmasks };
}
