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
import { MODEL_SPEC_FORMAT, type ModelSpec } from '../../federated/model/model-spec.ts';
import { fromBase64, toBase64 } from '../../federated/secagg/bytes.ts';
import { type ClientState, type DeviceIdentity, clientAdvertiseKeys, clientMaskedInput, clientShareKeys, clientUnmask, createIdentity } from '../../federated/secagg/client.ts';
import { encodeUpdate } from '../../federated/secagg/fixed-point.ts';
import { ddgaussEncode } from '../../federated/dp/distributed-dp.ts';
import type { RoundConfig } from '../../federated/secagg/messages.ts';
import { decodeMessage, encodeMessage } from '../../federated/secagg/wire.ts';
import { type RoundInfo, relayFromJson } from '../../federated/aggregation/task-protocol.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { nonIidShards } from '../../models/data/non-iid.ts';
import { mnistMlp } from '../../models/specs.ts';
import { runSimulation, servedAccuracy, status } from '../../simulate/simulation.ts';
import { Participant } from '../../client-sdk/federated/participant.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../../client-sdk/privacy/ledger.ts';
import { type LocalServer, startLocalServer } from './local-server.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'fedge-fl-'));
const PORT = 18797;
const ADMIN = { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' };
let server: LocalServer;

beforeAll(async () => {
  useNodeWasm();
  await tf.setBackend('wasm');
  server = await startLocalServer({ port: PORT, persistTo: stateDir });
});
afterAll(async () => {
  await server?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const tiny: ModelSpec = { format: MODEL_SPEC_FORMAT, name: 'tiny', inputShape: [4], layers: [{ type: 'dense', units: 3, activation: 'softmax' }], inputName: 'input', outputName: 'probabilities', labels: ['a', 'b', 'c'] };
const TINY_D = 4 * 3 + 3;

async function createTask(task: string, over: Record<string, unknown> = {}) {
  const weights = new Float32Array(TINY_D).map((_, i) => i / 100);
  const res = await fetch(`${server.url}/v1/tasks`, {
    method: 'POST', headers: ADMIN,
    body: JSON.stringify({ task, model: task, spec: tiny, weights: toBase64(new Uint8Array(weights.buffer)), rounds: 1, devicesPerRound: 3, minDevices: 3, secagg: { neighbours: 2, threshold: 2 }, stageSeconds: 600, update: { clip: 1, maxExamples: 10 }, enrollmentToken: 'token-0123456789abcdef', ...over }),
  });
  return { res, weights };
}

/** A device driven stage by stage with the SecAgg+ client functions, over the real HTTP API. */
class Device {
  state?: ClientState;
  readonly task: string;
  readonly identity: DeviceIdentity;
  constructor(task: string, identity: DeviceIdentity) {
    this.task = task;
    this.identity = identity;
  }
  static async enrolled(task: string, id: string): Promise<Device> {
    const d = new Device(task, await createIdentity(id));
    const res = await fetch(`${server.url}/v1/tasks/${task}/devices`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer token-0123456789abcdef' }, body: JSON.stringify({ device: id, identityKey: toBase64(d.identity.publicKey) }) });
    expect(res.status).toBe(201);
    return d;
  }
  async info(): Promise<RoundInfo> {
    return (await (await fetch(`${server.url}/v1/tasks/${this.task}/round`)).json()) as RoundInfo;
  }
  async post(bytes: Uint8Array): Promise<Response> {
    return fetch(`${server.url}/v1/tasks/${this.task}/messages`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes });
  }
  async relay(kind: string): Promise<unknown> {
    const res = await fetch(`${server.url}/v1/tasks/${this.task}/rounds/1/${kind}?device=${this.identity.id}`);
    expect(res.status).toBe(200);
    return res.json();
  }
  async advertise(): Promise<Uint8Array> {
    const i = await this.info();
    const config: RoundConfig = { roundId: i.roundId, neighbours: i.neighbours, threshold: i.threshold, graphSeed: fromBase64(i.graphSeed), length: i.length };
    const { state, message } = await clientAdvertiseKeys(config, this.identity);
    this.state = state;
    return encodeMessage(message);
  }
  async share(): Promise<Uint8Array> {
    const { state, message } = await clientShareKeys(this.state!, relayFromJson.broadcast((await this.relay('broadcast')) as never));
    this.state = state;
    return encodeMessage(message);
  }
  async masked(update: Uint32Array): Promise<Uint8Array> {
    const { state, message } = await clientMaskedInput(this.state!, relayFromJson.delivery((await this.relay('delivery')) as never), update);
    this.state = state;
    return encodeMessage(message);
  }
  async unmask(): Promise<Uint8Array> {
    const { state, message } = await clientUnmask(this.state!, (await this.relay('unmask')) as never);
    this.state = state;
    return encodeMessage(message);
  }
}

describe('federated task on the local server', () => {
  it('Participants on non-IID MNIST with dropouts at every stage: every round publishes an int8 model the edge serves at once', async () => {
    const { train, test } = loadMnist();
    const m = buildTfjsModel(mnistMlp, 3);
    const weights = readTfjsWeights(mnistMlp, m);
    m.dispose();
    const held = { ...test, x: test.x.slice(0, 300 * 784), y: test.y.slice(0, 300), n: 300 };
    const { status: s, accuracy } = await runSimulation({
      url: server.url, adminToken: 'dev-admin-token', task: 'fl-mnist', spec: mnistMlp, weights, devices: nonIidShards(train, 10), test: held,
      rounds: 2, devicesPerRound: 6, dropout: 0.34, stageSeconds: 2, training: { epochs: 2, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' },
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
    expect((await fetch(`${server.url}/v1/tasks`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status).toBe(401);
    const { res } = await createTask('fl-bad');
    expect(res.status).toBe(201);
    const enrollWrongToken = await fetch(`${server.url}/v1/tasks/fl-bad/devices`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer nope-nope-nope-nope' }, body: JSON.stringify({ device: 'x', identityKey: toBase64(new Uint8Array(32)) }) });
    expect(enrollWrongToken.status).toBe(403);
    const devices = await Promise.all(['d1', 'd2', 'd3'].map((id) => Device.enrolled('fl-bad', id)));
    const stranger = new Device('fl-bad', await createIdentity('stranger'));
    const refusedStranger = await stranger.post(await stranger.advertise());
    expect(refusedStranger.status).toBe(403);
    expect(((await refusedStranger.json()) as { error: string }).error).toMatch(/not enrolled/);
    const forged = await devices[0]!.advertise();
    forged[forged.length - 1]! ^= 1;
    expect((await devices[0]!.post(forged)).status).toBe(403);
    expect((await devices[0]!.post(new Uint8Array([1, 2, 3]))).status).toBe(400);
    const ads = await Promise.all(devices.map((d) => d.advertise()));
    expect((await devices[0]!.post(ads[0]!)).status).toBe(202);
    expect((await devices[0]!.post(ads[0]!)).status).toBe(200); // retry: a no-op
    expect((await devices[0]!.post(await devices[0]!.advertise())).status).toBe(409); // other keys, same round
    const s = await status(server.url, 'fl-bad');
    expect(s.history[0]).toMatchObject({ advertised: 1, shared: 0, submitted: 0 }); // only the one valid message counted
    expect(s.enrolledDevices).toBe(3);
    // Per-device rate limit: a device hammering a relay is told to slow down (429 + Retry-After), others are not.
    const burst = await Promise.all(Array.from({ length: 40 }, () => fetch(`${server.url}/v1/tasks/fl-bad/rounds/1/broadcast?device=d2`)));
    const limited = burst.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]!.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(((await limited[0]!.json()) as { error: string }).error).toMatch(/too many requests/);
    expect((await fetch(`${server.url}/v1/tasks/fl-bad/rounds/1/broadcast?device=d3`)).status).toBe(425); // still open, not limited
    expect((await fetch(`${server.url}/v1/tasks/fl-bad/rounds/1/broadcast?device=d3&wait=99`)).status).toBe(400);
  });

  it('a device whose privacy budget would be exceeded sits the round out before sending anything', async () => {
    await createTask('fl-budget', { privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5, epsilon: 1 } });
    const p = new Participant({ url: server.url, task: 'fl-budget', identity: await createIdentity('frugal'), backend: 'wasm', ledger: new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 0.05, delta: 1e-5 }) });
    await p.enroll('token-0123456789abcdef');
    const data = { x: new Float32Array(40).map((_, i) => (i % 7) / 7), y: Array.from({ length: 10 }, (_, i) => i % 3) };
    const outcome = await p.joinRound(data);
    expect(outcome).toMatchObject({ round: 1, status: 'skipped', reason: expect.stringMatching(/privacy budget .* would be exceeded/) });
    expect((await status(server.url, 'fl-budget')).history[0]).toMatchObject({ advertised: 0, submitted: 0 });
  });

  it('distributed DP: devices add DDGauss noise shares before masking; the task publishes the noisy mean and reports client-level ε', async () => {
    expect((await createTask('fl-ddp-bad', { distributedDp: { clip: 1, noiseMultiplier: 0 } })).res.status).toBe(400);
    const { weights } = await createTask('fl-ddp', { serverOptimizer: { kind: 'fedavg', learningRate: 1 }, distributedDp: { clip: 1, noiseMultiplier: 0.01 } });
    const devices = await Promise.all(['p1', 'p2', 'p3'].map((id) => Device.enrolled('fl-ddp', id)));
    const info = await devices[0]!.info();
    expect(info.distributedDp).toMatchObject({ dimension: TINY_D, paddedDimension: 16, devices: 3 });
    expect(info.length).toBe(16); // the rotated, padded update; no weight word
    for (const d of devices) expect((await d.post(await d.advertise())).status).toBe(202);
    for (const d of devices) expect((await d.post(await d.share())).status).toBe(202);
    // Known updates 0.01, 0.02, 0.03 in every coordinate (norms < clip): the published mean is 0.02 plus noise of
    // std 0.01/3 per coordinate.
    const updates = await Promise.all(devices.map((_, i) => ddgaussEncode(new Float32Array(TINY_D).fill(0.01 * (i + 1)), info.distributedDp!, fromBase64(info.graphSeed))));
    for (const [i, d] of devices.entries()) expect((await d.post(await d.masked(updates[i]!))).status).toBe(202);
    for (const d of devices) expect((await d.post(await d.unmask())).status).toBe(202);
    const s = await status(server.url, 'fl-ddp');
    expect(s.history[0]).toMatchObject({ status: 'published', version: 'r1' });
    expect(s.history[0]!.clientEpsilon).toBeGreaterThan(0);
    expect(s.distributedDp).toMatchObject({ clip: 1, noiseMultiplier: 0.01, delta: 1e-5, epsilon: s.history[0]!.clientEpsilon });
    const after = new Float32Array(await (await fetch(`${server.url}/v1/tasks/fl-ddp/weights`)).arrayBuffer());
    const moved = after.map((w, i) => w - weights[i]!);
    const mean = moved.reduce((a, b) => a + b, 0) / moved.length;
    expect(mean).toBeGreaterThan(0.015);
    expect(mean).toBeLessThan(0.025);
    moved.forEach((m) => expect(Math.abs(m - 0.02)).toBeLessThan(0.02));
  });

  it('a server restart in the middle of a round loses nothing and counts nothing twice', async () => {
    const { weights } = await createTask('fl-restart', { serverOptimizer: { kind: 'fedavg', learningRate: 1 } });
    const devices = await Promise.all(['r1', 'r2', 'r3'].map((id) => Device.enrolled('fl-restart', id)));
    for (const d of devices) expect((await d.post(await d.advertise())).status).toBe(202);
    for (const d of devices) expect((await d.post(await d.share())).status).toBe(202);
    // Known updates: device i moves every weight by 0.01·(i+1) with equal example counts → the mean is 0.02.
    const info = await devices[0]!.info();
    const updates = devices.map((_, i) => encodeUpdate(new Float32Array(TINY_D).fill(0.01 * (i + 1)), 10, info.fixedPoint));
    const masked = await Promise.all(devices.map((d, i) => d.masked(updates[i]!)));
    expect((await devices[0]!.post(masked[0]!)).status).toBe(202);
    expect((await devices[1]!.post(masked[1]!)).status).toBe(202);
    await server.stop();
    server = await startLocalServer({ port: PORT, persistTo: stateDir });
    expect((await devices[0]!.post(masked[0]!)).status).toBe(200); // retried after the restart: already in the sum
    const tampered = await devices[2]!.post(encodeMessage({ ...decodeMessage(masked[2]!), masked: new Uint32Array(5) } as never));
    expect(tampered.status).toBe(403); // the signature covers the input: a changed (here: shortened) input does not verify
    expect((await devices[2]!.post(masked[2]!)).status).toBe(202);
    for (const d of devices) expect((await d.post(await d.unmask())).status).toBe(202);
    const s = await status(server.url, 'fl-restart');
    expect(s.history[0]).toMatchObject({ status: 'published', submitted: 3, unmasked: 3, dropouts: 0, version: 'r1' });
    const after = new Float32Array(await (await fetch(`${server.url}/v1/tasks/fl-restart/weights`)).arrayBuffer());
    after.forEach((w, i) => expect(w).toBeCloseTo(weights[i]! + 0.02, 5));
  });
});
