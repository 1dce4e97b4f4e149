/**
 * One malicious device against real Participants on the real local server (workerd, SQLite Durable Objects, R2):
 * what the round, the published model and the honest devices' ledgers look like afterwards (issue 31, point 8).
 * The attacker is the test's device driver (test/drivers/secagg-device.ts), which can send what no Participant would.
 * Sharded rounds under attack, robust shard combination and Sybil ε are tested in workerd
 * (test/functions/tasks/sharded-rounds.test.ts, client-epsilon.test.ts); their effect on a model in bench:robust.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Participant, type RoundOutcome } from '../../../client-sdk/federated/participant.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../../../client-sdk/privacy/ledger.ts';
import { useNodeWasm } from '../../../client-sdk/training/node-backend.ts';
import type { TaskStatus } from '../../../federated/aggregation/task-protocol.ts';
import { toBase64 } from '../../../federated/bytes.ts';
import { TINY_D, tiny } from '../../fixtures/tiny-spec.ts';
import { createIdentity } from '../../../federated/secagg/client.ts';
import { type LocalServer, startLocalServer } from '../../../dev/harness/local-server.ts';
import { type Edge, SecAggDevice } from '../../drivers/secagg-device.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'fedge-attacks-'));
const ADMIN = { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' };
const ENROLL = 'token-0123456789abcdef';
let server: LocalServer;
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
afterAll(async () => {
  await server?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const D = TINY_D;
const data = { x: new Float32Array(40).map((_, i) => (i % 7) / 7), y: Array.from({ length: 10 }, (_, i) => i % 3) };

async function createTask(task: string, over: Record<string, unknown> = {}) {
  const res = await fetch(`${server.url}/v1/tasks`, {
    method: 'POST',
    headers: ADMIN,
    body: JSON.stringify({
      task,
      model: task,
      spec: tiny,
      weights: toBase64(new Uint8Array(new Float32Array(D).map((_, i) => i / 100).buffer)),
      rounds: 2,
      devicesPerRound: 4,
      minDevices: 3,
      secagg: { neighbours: 3, threshold: 2 },
      stageSeconds: 5,
      update: { clip: 1, maxExamples: 10 },
      training: { epochs: 1, batchSize: 5, learningRate: 0.1, optimizer: 'sgd' },
      privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5, epsilon: 50 },
      enrollmentToken: ENROLL,
      ...over,
    }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
}
const status = async (task: string, headers: Record<string, string> = {}) =>
  (await (await fetch(`${server.url}/v1/tasks/${task}`, { headers })).json()) as TaskStatus;
/** The task's status once round `round` has ended (the last unmask may still be on its way). */
async function ended(task: string, round: number): Promise<TaskStatus> {
  let s = await status(task);
  for (
    let i = 0;
    i < 100 && s.history[round - 1]?.status !== 'published' && s.history[round - 1]?.status !== 'abandoned';
    i++
  ) {
    await new Promise((r) => setTimeout(r, 100));
    s = await status(task);
  }
  return s;
}
const weights = async (task: string) =>
  new Float32Array(await (await fetch(`${server.url}/v1/tasks/${task}/weights`)).arrayBuffer());

/** `n` honest Participants, each with its own privacy ledger. */
async function honest(task: string, n: number) {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const ledger = new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 50, delta: 1e-5 });
      const p = new Participant({
        url: server.url,
        task,
        identity: await createIdentity(`honest-${i}`),
        backend: 'wasm',
        pollMs: 100,
        ledger,
        source: 'data',
      });
      await p.enroll(ENROLL);
      return { p, ledger };
    }),
  );
}

/** A relay the attacker waits for (the stage closes once the honest devices answered). */
async function relayed(d: SecAggDevice, kind: string): Promise<Response> {
  for (let i = 0; i < 200; i++) {
    const res = await d.relayRes(kind);
    if (res.status !== 425) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${kind} never closed`);
}

describe('one malicious device among real Participants', () => {
  it('a masked input no honest device could send: the round is abandoned saying why (naming no one), nothing is published; the next round, without it, publishes', async () => {
    const task = 'attack-blowup';
    await createTask(task);
    const devices = await honest(task, 3);
    const attacker = await SecAggDevice.enrolled(edge, task, 'mallory', ENROLL);
    const before = await weights(task);
    const attack = (async () => {
      // Check in first, then follow the stages as an honest device would — with a blown-up masked input.
      for (let i = 0; i < 100 && !(await attacker.info()).open; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await attacker.send(await attacker.advertise())).status).toBe(202);
      expect((await relayed(attacker, 'broadcast')).status).toBe(200);
      expect((await attacker.send(await attacker.share())).status).toBe(202);
      expect((await relayed(attacker, 'delivery')).status).toBe(200);
      const words = new Uint32Array(D + 1).map((_, i) => (i % 2 ? 0.8 * 2 ** 31 : -0.8 * 2 ** 31) >>> 0);
      expect((await attacker.send(await attacker.masked(words))).status).toBe(202);
      expect((await relayed(attacker, 'unmask')).status).toBe(200);
      expect((await attacker.send(await attacker.unmask())).status).toBe(202);
    })();
    const outcomes: RoundOutcome[] = await Promise.all(devices.map(({ p }) => p.joinRound(data)));
    await attack;
    let s = await ended(task, 1);
    expect(s.history[0]).toMatchObject({
      status: 'abandoned',
      unmasked: 4,
      reason: expect.stringMatching(/the round's sum is not one its 4 devices could have sent/),
    });
    expect(JSON.stringify(s)).not.toMatch(/mallory|honest-/);
    expect(s.publishedVersions).toEqual([]);
    expect(await weights(task)).toEqual(before);
    // The honest devices did their part; the sum their inputs were in was unmasked (the server learned it): charged.
    expect(outcomes.map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
    for (const { ledger } of devices) expect(await ledger.spent('data')).toBeGreaterThan(0);
    // Round 2 without the attacker: the honest devices' round publishes.
    const second = await Promise.all(devices.map(({ p }) => p.joinRound(data)));
    expect(second.map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
    s = await ended(task, 2);
    expect(s.history[1]).toMatchObject({ status: 'published', version: 'r2' });
  });

  it('a token holder with a thousand identities: the per-address cap stops it, honest devices from elsewhere enrol', async () => {
    const task = 'attack-sybil';
    await createTask(task, { enrollment: { maxPerAddress: 5 } });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { publicKey } = await createIdentity(`sybil-${i}`);
      const res = await fetch(`${server.url}/v1/tasks/${task}/devices`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${ENROLL}`,
          'Content-Type': 'application/json',
          'CF-Connecting-IP': '198.51.100.7',
        },
        body: JSON.stringify({ device: `sybil-${i}`, identityKey: toBase64(publicKey) }),
      });
      statuses.push(res.status);
    }
    expect(statuses.filter((x) => x === 201).length).toBe(5);
    expect(statuses.filter((x) => x === 429).length).toBe(15);
    // Devices from other addresses are not held back by it.
    const { publicKey } = await createIdentity('neighbour');
    const res = await fetch(`${server.url}/v1/tasks/${task}/devices`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${ENROLL}`,
        'Content-Type': 'application/json',
        'CF-Connecting-IP': '198.51.100.8',
      },
      body: JSON.stringify({ device: 'neighbour', identityKey: toBase64(publicKey) }),
    });
    expect(res.status).toBe(201);
    expect((await status(task)).enrolledDevices).toBe(6);
  });
});
