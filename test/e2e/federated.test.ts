/**
 * Federated learning end to end against the real local server (wrangler dev on workerd, SQLite Durable Objects,
 * local R2): Participants on non-IID MNIST with dropouts at every stage; a server restart in the middle of a round;
 * bad and malicious messages refused with nothing stored lost or counted twice.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeWasm } from '../../client-sdk/training/node-backend.ts';
import { buildTfjsModel, readTfjsWeights } from '../../federated/model/tfjs-model.ts';
import { flattenWeights } from '../../federated/model/flat-weights.ts';
import { TINY_D, tiny } from '../fixtures/tiny-spec.ts';
import { fromBase64, toBase64 } from '../../federated/bytes.ts';
import { createIdentity } from '../../federated/secagg/client.ts';
import { encodeUpdate } from '../../federated/secagg/fixed-point.ts';
import { ddgaussEncode } from '../../federated/dp/distributed-dp.ts';
import { encodeMessage } from '../../federated/secagg/wire.ts';
import { DEVICE_SIGNATURE_HEADER, relaySigningBytes } from '../../federated/aggregation/task-protocol.ts';
import { sign } from '../../federated/secagg/primitives.ts';
import { execFileSync } from 'node:child_process';
import { Trainer } from '../../client-sdk/training/trainer.ts';
import { unflattenWeights } from '../../federated/model/flat-weights.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { nonIidShards } from '../../models/data/non-iid.ts';
import { mnistMlp } from '../../models/specs.ts';
import { runSimulation, servedAccuracy, status } from '../../simulate/simulation.ts';
import { Participant } from '../../client-sdk/federated/participant.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../../client-sdk/privacy/ledger.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';
import { type Edge, SecAggDevice } from '../drivers/secagg-device.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'fedge-fl-'));
const ADMIN = { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' };
const ENROLL = 'token-0123456789abcdef';
let server: LocalServer;
/** The local server for the device driver: global fetch, and the URL of whichever server runs now (a restart replaces it). */
const edge: Edge = {
  fetch,
  get url() {
    return server.url;
  },
};

beforeAll(async () => {
  useNodeWasm();
  await tf.setBackend('wasm');
  server = await startLocalServer({ persistTo: stateDir });
});

/** The port the current server listens on: a restart must come back on it, where devices are talking. */
const portOf = (s: LocalServer) => Number(new URL(s.url).port);
afterAll(async () => {
  await server?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

async function createTask(task: string, over: Record<string, unknown> = {}) {
  const weights = new Float32Array(TINY_D).map((_, i) => i / 100);
  const res = await fetch(`${server.url}/v1/tasks`, {
    method: 'POST',
    headers: ADMIN,
    body: JSON.stringify({
      task,
      model: task,
      spec: tiny,
      weights: toBase64(new Uint8Array(weights.buffer)),
      rounds: 1,
      devicesPerRound: 3,
      minDevices: 3,
      secagg: { neighbours: 2, threshold: 2 },
      stageSeconds: 600,
      update: { clip: 1, maxExamples: 10 },
      enrollmentToken: ENROLL,
      ...over,
    }),
  });
  return { res, weights };
}

/** The runtime (workerd) under a local server: found in the server's process group, by PID, never by name. */
function workerdPids(s: LocalServer): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,pgid=,comm='], { encoding: 'utf8' }).trim().split('\n');
  return rows
    .map((r) => r.trim().split(/\s+/))
    .filter(([, pgid, comm]) => Number(pgid) === s.child.pid && /workerd/.test(comm ?? ''))
    .map(([pid]) => Number(pid));
}

describe('federated task on the local server', () => {
  it('Participants on non-IID MNIST with dropouts at every stage: every round publishes an int8 model the edge serves at once', async () => {
    const { train, test } = loadMnist();
    const m = buildTfjsModel(mnistMlp, 3);
    const weights = readTfjsWeights(mnistMlp, m);
    m.dispose();
    const held = { ...test, x: test.x.slice(0, 300 * 784), y: test.y.slice(0, 300), n: 300 };
    const { status: s, accuracy } = await runSimulation({
      url: server.url,
      adminToken: 'dev-admin-token',
      task: 'fl-mnist',
      spec: mnistMlp,
      weights,
      devices: nonIidShards(train, 10),
      test: held,
      rounds: 2,
      devicesPerRound: 6,
      dropout: 0.34,
      // Devices that drop out cost a stage deadline each; 5 s leaves the slow ones slack when the whole suite loads both cores.
      stageSeconds: 5,
      training: { epochs: 2, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' },
      privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5, epsilon: 50 },
    });
    expect(s.status).toBe('finished');
    expect(s.publishedVersions).toEqual(['r1', 'r2']);
    for (const h of s.history) {
      expect(h.status).toBe('published');
      expect(h.dropouts).toBe(2); // one before share-keys, one before masked input (the third dropped at unmask is still in the sum)
      expect(h.updateNorm).toBeGreaterThan(0);
      expect(h.epsilon).toBeGreaterThan(0);
    }
    expect(s.privacy!.maxSpent).toBeGreaterThan(0);
    // The task's alias moved: the edge serves r2 under it, right after the round.
    const alias = await fetch(`${server.url}/v2/models/fl-mnist/versions/federated`);
    expect(((await alias.json()) as { parameters: { version: string } }).parameters.version).toBe('r2');
    expect(accuracy[1]).toBeGreaterThan(0.2); // from random weights, two non-IID rounds: well above chance (0.1)
    expect(await servedAccuracy(server.url, 'fl-mnist', 'r2', held)).toBe(accuracy[1]);
  });

  it('refuses bad and malicious messages and stores nothing from them; a retry is not counted twice', async () => {
    expect((await createTask('fl-bad', { rounds: 0 })).res.status).toBe(400);
    expect(
      (
        await fetch(`${server.url}/v1/tasks`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: '{}',
        })
      ).status,
    ).toBe(401);
    const { res } = await createTask('fl-bad');
    expect(res.status).toBe(201);
    const enrollWrongToken = await fetch(`${server.url}/v1/tasks/fl-bad/devices`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer nope-nope-nope-nope' },
      body: JSON.stringify({ device: 'x', identityKey: toBase64(new Uint8Array(32)) }),
    });
    expect(enrollWrongToken.status).toBe(403);
    const devices = await Promise.all(
      ['d1', 'd2', 'd3'].map((id) => SecAggDevice.enrolled(edge, 'fl-bad', id, ENROLL)),
    );
    const stranger = new SecAggDevice(edge, 'fl-bad', await createIdentity('stranger'));
    const refusedStranger = await stranger.send(await stranger.advertise());
    expect(refusedStranger.status).toBe(403);
    expect(((await refusedStranger.json()) as { error: string }).error).toMatch(/not enrolled/);
    const forged = encodeMessage(await devices[0]!.advertise());
    forged[forged.length - 1]! ^= 1;
    expect((await devices[0]!.send(forged)).status).toBe(403);
    expect((await devices[0]!.send(new Uint8Array([1, 2, 3]))).status).toBe(400);
    const ads = await Promise.all(devices.map((d) => d.advertise()));
    expect((await devices[0]!.send(ads[0]!)).status).toBe(202);
    expect((await devices[0]!.send(ads[0]!)).status).toBe(200); // retry: a no-op
    expect((await devices[0]!.send(await devices[0]!.advertise())).status).toBe(409); // other keys, same round
    const s = await status(server.url, 'fl-bad');
    expect(s.history[0]).toMatchObject({ advertised: 1, shared: 0, submitted: 0 }); // only the one valid message counted
    expect(s.enrolledDevices).toBe(3);
    // Per-device rate limit: a device hammering a relay is told to slow down (429 + Retry-After), others are not.
    const signedRelay = async (d: SecAggDevice, query = '') =>
      fetch(`${server.url}/v1/tasks/fl-bad/rounds/1/broadcast?device=${d.identity.id}${query}`, {
        headers: {
          [DEVICE_SIGNATURE_HEADER]: toBase64(
            await sign(d.identity.seed, relaySigningBytes('fl-bad', 1, 'broadcast', d.identity.id)),
          ),
        },
      });
    expect((await fetch(`${server.url}/v1/tasks/fl-bad/rounds/1/broadcast?device=d2`)).status).toBe(401); // relays need the device's signature
    const burst = await Promise.all(Array.from({ length: 40 }, () => signedRelay(devices[1]!)));
    const limited = burst.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]!.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(((await limited[0]!.json()) as { error: string }).error).toMatch(/too many requests/);
    expect((await signedRelay(devices[2]!)).status).toBe(425); // still open, not limited
    expect((await signedRelay(devices[2]!, '&wait=99')).status).toBe(400);
  });

  it('a device whose privacy budget would be exceeded sits the round out before sending anything', async () => {
    await createTask('fl-budget', { privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5, epsilon: 1 } });
    const p = new Participant({
      url: server.url,
      task: 'fl-budget',
      identity: await createIdentity('frugal'),
      backend: 'wasm',
      ledger: new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 0.05, delta: 1e-5 }),
    });
    await p.enroll('token-0123456789abcdef');
    const data = { x: new Float32Array(40).map((_, i) => (i % 7) / 7), y: Array.from({ length: 10 }, (_, i) => i % 3) };
    const outcome = await p.joinRound(data);
    expect(outcome).toMatchObject({
      round: 1,
      status: 'skipped',
      reason: expect.stringMatching(/privacy budget .* would be exceeded/),
    });
    expect((await status(server.url, 'fl-budget')).history[0]).toMatchObject({ advertised: 0, submitted: 0 });
  });

  it("a round that unmasks no one's input charges no ledger; the round after, which publishes, charges each device once", async () => {
    await createTask('fl-refund', {
      rounds: 2,
      stageSeconds: 3,
      privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5, epsilon: 50 },
    });
    const ledgers = [0, 1, 2].map(() => new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 50, delta: 1e-5 }));
    const devices = await Promise.all(
      ledgers.map(
        async (ledger, i) =>
          new Participant({
            url: server.url,
            task: 'fl-refund',
            identity: await createIdentity(`refund-${i}`),
            backend: 'wasm',
            ledger,
            source: 'text',
          }),
      ),
    );
    for (const d of devices) await d.enroll(ENROLL);
    const data = { x: new Float32Array(40).map((_, i) => (i % 7) / 7), y: Array.from({ length: 10 }, (_, i) => i % 3) };
    // Round 1: one device vanishes before its masked input; with 2 of the 3 inputs the task needs, the round is
    // abandoned before anyone's shares are revealed — the two inputs that did arrive were never unmasked.
    const first = await Promise.all(
      devices.map((d, i) => d.joinRound(data, i === 0 ? { dropAt: 'before-masked-input' } : {})),
    );
    expect(first.map((o) => o.status)).toEqual(['skipped', 'skipped', 'skipped']);
    expect((await status(server.url, 'fl-refund')).history[0]).toMatchObject({
      status: 'abandoned',
      submitted: 2,
      unmasked: 0,
    });
    for (const l of ledgers) expect(await l.spent('text')).toBe(0);
    const second = await Promise.all(devices.map((d) => d.joinRound(data)));
    expect(second.map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
    expect((await status(server.url, 'fl-refund')).history[1]).toMatchObject({ status: 'published' });
    for (const [i, l] of ledgers.entries()) {
      expect(await l.spent('text')).toBeCloseTo(second[i]!.epsilon!, 6);
      expect(await l.spent('text')).toBeGreaterThan(0);
    }
  });

  it('a sampled round: Participants check the draw against the committed seed; those not drawn sit it out, uncharged', async () => {
    await createTask('fl-cohort', {
      devicesPerRound: 8,
      stageSeconds: 3,
      cohort: { sampleRate: 0.8 },
      privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5, epsilon: 50 },
    });
    const ledgers = Array.from(
      { length: 8 },
      () => new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 50, delta: 1e-5 }),
    );
    const devices = await Promise.all(
      ledgers.map(
        async (ledger, i) =>
          new Participant({
            url: server.url,
            task: 'fl-cohort',
            identity: await createIdentity(`cohort-${i}`),
            backend: 'wasm',
            ledger,
          }),
      ),
    );
    for (const d of devices) await d.enroll(ENROLL);
    const data = { x: new Float32Array(40).map((_, i) => (i % 7) / 7), y: Array.from({ length: 10 }, (_, i) => i % 3) };
    const outcomes = await Promise.all(devices.map((d) => d.joinRound(data)));
    const drawnIn = outcomes.filter((o) => o.status === 'unmasked').length;
    // P(fewer than 3 of 8 drawn at q = 0.8) ≈ 10⁻³.
    expect(drawnIn).toBeGreaterThanOrEqual(3);
    for (const o of outcomes.filter((x) => x.status === 'skipped'))
      expect(o.reason).toMatch(/was not drawn into round 1's cohort/);
    const s = await status(server.url, 'fl-cohort');
    expect(s.history[0]).toMatchObject({ status: 'published', cohort: { checkedIn: 8, drawn: drawnIn } });
    for (const [i, o] of outcomes.entries())
      expect((await ledgers[i]!.spent('task:fl-cohort')) > 0).toBe(o.status === 'unmasked');
  });

  it('distributed DP: devices add DDGauss noise shares before masking; the task publishes the noisy mean and reports client-level ε', async () => {
    expect((await createTask('fl-ddp-bad', { distributedDp: { clip: 1, noiseMultiplier: 0 } })).res.status).toBe(400);
    const { weights } = await createTask('fl-ddp', {
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      distributedDp: { clip: 1, noiseMultiplier: 0.01 },
    });
    const devices = await Promise.all(
      ['p1', 'p2', 'p3'].map((id) => SecAggDevice.enrolled(edge, 'fl-ddp', id, ENROLL)),
    );
    const info = await devices[0]!.info();
    expect(info.distributedDp).toMatchObject({ dimension: TINY_D, paddedDimension: 16, devices: 3 });
    expect(info.length).toBe(16); // the rotated, padded update; no weight word
    for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
    for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
    // Known updates 0.01, 0.02, 0.03 in every coordinate (norms < clip): the published mean is 0.02 plus noise of
    // std 0.01/3 per coordinate.
    const updates = await Promise.all(
      devices.map((_, i) =>
        ddgaussEncode(new Float32Array(TINY_D).fill(0.01 * (i + 1)), info.distributedDp!, fromBase64(info.graphSeed)),
      ),
    );
    for (const [i, d] of devices.entries()) expect((await d.send(await d.masked(updates[i]!))).status).toBe(202);
    for (const d of devices) expect((await d.send(await d.unmask())).status).toBe(202);
    const s = await status(server.url, 'fl-ddp');
    expect(s.history[0]).toMatchObject({ status: 'published', version: 'r1' });
    expect(s.history[0]!.clientEpsilon).toBeGreaterThan(0);
    expect(s.distributedDp).toMatchObject({
      clip: 1,
      noiseMultiplier: 0.01,
      delta: 1e-5,
      epsilon: s.history[0]!.clientEpsilon,
    });
    const after = new Float32Array(await (await fetch(`${server.url}/v1/tasks/fl-ddp/weights`)).arrayBuffer());
    const moved = after.map((w, i) => w - weights[i]!);
    const mean = moved.reduce((a, b) => a + b, 0) / moved.length;
    expect(mean).toBeGreaterThan(0.015);
    expect(mean).toBeLessThan(0.025);
    moved.forEach((m) => expect(Math.abs(m - 0.02)).toBeLessThan(0.02));
  });

  it('a server restart in the middle of a round loses nothing and counts nothing twice', async () => {
    const { weights } = await createTask('fl-restart', { serverOptimizer: { kind: 'fedavg', learningRate: 1 } });
    const devices = await Promise.all(
      ['r1', 'r2', 'r3'].map((id) => SecAggDevice.enrolled(edge, 'fl-restart', id, ENROLL)),
    );
    for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
    for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
    // Known updates: device i moves every weight by 0.01·(i+1) with equal example counts → the mean is 0.02.
    const info = await devices[0]!.info();
    const updates = devices.map((_, i) =>
      encodeUpdate(new Float32Array(TINY_D).fill(0.01 * (i + 1)), 10, info.fixedPoint),
    );
    const masked = await Promise.all(devices.map((d, i) => d.masked(updates[i]!)));
    expect((await devices[0]!.send(masked[0]!)).status).toBe(202);
    expect((await devices[1]!.send(masked[1]!)).status).toBe(202);
    const port = portOf(server);
    await server.stop();
    server = await startLocalServer({ port, persistTo: stateDir });
    expect((await devices[0]!.send(masked[0]!)).status).toBe(200); // retried after the restart: already in the sum
    const original = masked[2]!;
    const shortened = await devices[2]!.send(encodeMessage({ ...original, masked: new Uint32Array(5) }));
    expect(shortened.status).toBe(400); // the round's inputs are 16 words: refused from the frame header, before anything else
    const changed = original.masked.slice();
    changed[0]! ^= 1;
    expect((await devices[2]!.send(encodeMessage({ ...original, masked: changed }))).status).toBe(403); // the signature covers the input
    expect((await devices[2]!.send(masked[2]!)).status).toBe(202);
    for (const d of devices) expect((await d.send(await d.unmask())).status).toBe(202);
    const s = await status(server.url, 'fl-restart');
    expect(s.history[0]).toMatchObject({ status: 'published', submitted: 3, unmasked: 3, dropouts: 0, version: 'r1' });
    const after = new Float32Array(await (await fetch(`${server.url}/v1/tasks/fl-restart/weights`)).arrayBuffer());
    after.forEach((w, i) => expect(w).toBeCloseTo(weights[i]! + 0.02, 5));
  });

  it('a device revealing wrong shares cannot stop the round: they are left out, it is named, the exact mean is published', async () => {
    const { weights } = await createTask('fl-liar', {
      devicesPerRound: 4,
      minDevices: 3,
      secagg: { neighbours: 3, threshold: 2 },
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
    });
    const devices = await Promise.all(
      ['l1', 'l2', 'l3', 'l4'].map((id) => SecAggDevice.enrolled(edge, 'fl-liar', id, ENROLL)),
    );
    for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
    for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
    const info = await devices[0]!.info();
    for (const [i, d] of devices.entries())
      expect(
        (await d.send(await d.masked(encodeUpdate(new Float32Array(TINY_D).fill(0.01 * (i + 1)), 10, info.fixedPoint))))
          .status,
      ).toBe(202);
    const unmasks = await Promise.all(devices.map((d) => d.unmask()));
    const honest = unmasks[0]!;
    const lie = await devices[0]!.resign({
      ...honest,
      shares: honest.shares.map((s) => ({ ...s, y: s.y.map((b) => b ^ 0xa5) })),
    });
    expect((await devices[0]!.send(lie)).status).toBe(202);
    for (const [i, d] of devices.entries()) if (i > 0) expect((await d.send(unmasks[i]!)).status).toBe(202); // the last one was a 500
    // Named in the admin's view only: the public status names no device.
    expect((await status(server.url, 'fl-liar')).history[0]!.badShares).toBeUndefined();
    const s = (await (
      await fetch(`${server.url}/v1/tasks/fl-liar`, { headers: { Authorization: ADMIN.Authorization } })
    ).json()) as Awaited<ReturnType<typeof status>>;
    expect(s.history[0]).toMatchObject({
      status: 'published',
      version: 'r1',
      badShares: expect.arrayContaining([expect.objectContaining({ holder: 'l1' })]),
    });
    expect(new Set(s.history[0]!.badShares!.map((b) => b.holder))).toEqual(new Set(['l1']));
    const after = new Float32Array(await (await fetch(`${server.url}/v1/tasks/fl-liar/weights`)).arrayBuffer());
    after.forEach((w, i) => expect(w).toBeCloseTo(weights[i]! + 0.025, 5)); // mean of 0.01…0.04
  });

  it('kill -9 of the runtime after some masked inputs: stock Participants retry through the restart and the round publishes the known mean', async () => {
    const { weights } = await createTask('fl-kill', {
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      training: { epochs: 1, batchSize: 10, learningRate: 0.5, optimizer: 'sgd' },
    });
    const data = (k: number) => ({
      x: new Float32Array(40).map((_, i) => ((i * (k + 3)) % 11) / 11),
      y: Array.from({ length: 10 }, (_, i) => (i + k) % 3),
    });
    // The known mean: the same full-batch SGD step each device takes (one batch of all 10 examples, so the
    // shuffle does not matter), averaged with equal example counts.
    const expected = new Float64Array(TINY_D);
    for (let k = 0; k < 3; k++) {
      const t = await Trainer.create({ spec: tiny, weights: unflattenWeights(tiny, weights), backend: 'wasm' });
      await t.fit(data(k), { epochs: 1, batchSize: 10, learningRate: 0.5, optimizer: 'sgd' });
      flattenWeights(tiny, t.weights()).forEach((w, i) => (expected[i]! += (w - weights[i]!) / 3));
      t.dispose();
    }
    // The third device's masked input waits at this gate until the runtime has been killed.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const gated: typeof fetch = async (input, init) => {
      const body = init?.body;
      if (String(input).endsWith('/messages') && body instanceof Uint8Array && body[0] === 3) await gate;
      return fetch(input, init);
    };
    const participants = await Promise.all(
      [0, 1, 2].map(async (k) => {
        const p = new Participant({
          url: server.url,
          task: 'fl-kill',
          identity: await createIdentity(`k${k}`),
          backend: 'wasm',
          pollMs: 100,
          retryForMs: 120_000,
          fetch: k === 2 ? gated : undefined,
        });
        await p.enroll('token-0123456789abcdef');
        return p;
      }),
    );
    const outcomes = Promise.all(participants.map((p, k) => p.joinRound(data(k))));
    // Two masked inputs are in the sum: kill -9 the runtime (not SIGTERM), then let the third input go.
    for (let i = 0; (await status(server.url, 'fl-kill')).history[0]!.submitted < 2; i++) {
      if (i > 600) throw new Error('the masked inputs did not arrive');
      await new Promise((r) => setTimeout(r, 100));
    }
    const pids = workerdPids(server);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    open();
    const port = portOf(server);
    await server.stop();
    server = await startLocalServer({ port, persistTo: stateDir });
    expect((await outcomes).map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
    const s = await status(server.url, 'fl-kill');
    expect(s.history[0]).toMatchObject({ status: 'published', submitted: 3, unmasked: 3, version: 'r1' });
    const after = new Float32Array(await (await fetch(`${server.url}/v1/tasks/fl-kill/weights`)).arrayBuffer());
    after.forEach((w, i) => expect(w).toBeCloseTo(weights[i]! + expected[i]!, 4));
  }, 240_000);
});
