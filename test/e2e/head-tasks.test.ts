/**
 * Private fine-tuning of any served ONNX classifier, end to end against the real local server (wrangler dev on
 * workerd, SQLite Durable Objects, local R2): a task on a served version's head (`base` + `trainable`), Participants
 * in Node that embed their digits with the frozen body (LocalModel on WASM) and train only the head under DP-SGD,
 * SecAgg+ rounds, and a published version that is the base graph with the averaged head — byte for byte the base
 * everywhere else, served at once by the edge and by LocalModel; an int8 base publishes int8 again.
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
import { accuracy } from '../../federated/model/accuracy.ts';
import { detectHead, headBody } from '../../federated/model/head/index.ts';
import { ElemType, encodeModel, floatTensor, node, valueInfo } from '../../federated/model/onnx-graph.ts';
import { createIdentity } from '../../federated/secagg/client.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'fedge-head-'));
const ADMIN = { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' };
const TOKEN = 'token-0123456789abcdef';
const fixture = (f: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${f}`, import.meta.url)));
let server: LocalServer;
let edge: EdgeClient;
const { train, test } = loadMnist();
const heldOut = { x: test.x.subarray(0, 500 * 784), y: test.y.subarray(0, 500) };

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

const settings = (task: string, over: Record<string, unknown>) => ({
  task,
  model: task,
  rounds: 1,
  devicesPerRound: 3,
  minDevices: 3,
  secagg: { neighbours: 2, threshold: 2 },
  stageSeconds: 600,
  update: { clip: 1, maxExamples: 1000 },
  training: { epochs: 2, batchSize: 32, learningRate: 0.1, optimizer: 'sgd' },
  privacy: { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5, epsilon: 10 },
  enrollmentToken: TOKEN,
  ...over,
});

async function createTask(body: unknown): Promise<Response> {
  return fetch(`${server.url}/v1/tasks`, { method: 'POST', headers: ADMIN, body: JSON.stringify(body) });
}

/** Three devices, each holding 300 training digits the base never saw (it was trained on the first 2,000), as [n, ...shape]. */
async function runRound(task: string): Promise<void> {
  const devices = await Promise.all(
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
  const data = (k: number) => ({
    x: train.x.subarray((2000 + 300 * k) * 784, (2300 + 300 * k) * 784),
    y: train.y.subarray(2000 + 300 * k, 2300 + 300 * k),
  });
  const outcomes = await Promise.all(devices.map((p, k) => p.joinRound(data(k))));
  await Promise.all(devices.map((p) => p.release()));
  expect(outcomes.map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
  for (const o of outcomes) expect(o.epsilon).toBeGreaterThan(0); // DP-SGD ran, charged to each device's ledger
}

const taskStatus = async (task: string) => (await (await fetch(`${server.url}/v1/tasks/${task}`)).json()) as TaskStatus;
const taskWeights = async (task: string) =>
  new Float32Array(await (await fetch(`${server.url}/v1/tasks/${task}/weights`)).arrayBuffer());

/** Held-out accuracy of a served version, with the base's own input shape. */
async function served(model: string, version: string, shape: number[]): Promise<number> {
  const r = await edge.infer(
    model,
    { [(await edge.model(model, version)).inputs[0]!.name]: { data: heldOut.x, shape: [heldOut.y.length, ...shape] } },
    { version },
  );
  return accuracy(Object.values(r.outputs)[0]!.data as Float32Array, heldOut.y);
}

describe('tasks on a served model’s head', () => {
  it('refuses a base without a dense head (422 naming the node), an unknown base (404), and both modes at once (400), creating no task', async () => {
    await edge.uploadModel('no-head', '1', fixture('third-party/pt-if-opset11.onnx'));
    const headless = await createTask(settings('ft-refused', { base: { model: 'no-head', version: '1' } }));
    expect(headless.status).toBe(422);
    expect(((await headless.json()) as { error: string }).error).toMatch(
      /^base no-head@1: graph ends in If '\/If' \(output 'y'\)/,
    );
    const unknown = await createTask(settings('ft-refused', { base: { model: 'no-such-model', version: '1' } }));
    expect(unknown.status).toBe(404);
    const both = await createTask(
      settings('ft-refused', { base: { model: 'mnist-mlp', version: '1' }, spec: {}, weights: 'AAAA' }),
    );
    expect(both.status).toBe(400);
    const badTrainable = await createTask(
      settings('ft-refused', { base: { model: 'mnist-mlp', version: '1' }, trainable: 'all' }),
    );
    expect(badTrainable.status).toBe(400);
    // A head the Trainer cannot train (sigmoid outputs) and more layers than the graph's head has: 422, with the reason.
    const sigmoid = encodeModel({
      name: 'sigmoid-head',
      node: [node('Gemm', ['x', 'W', 'b'], ['z']), node('Sigmoid', ['z'], ['y'])],
      initializer: [
        floatTensor('W', [4, 2], new Float32Array(8).fill(0.1)),
        floatTensor('b', [2], new Float32Array(2)),
      ],
      input: [valueInfo('x', ElemType.FLOAT, ['n', 4])],
      output: [valueInfo('y', ElemType.FLOAT, ['n', 2])],
    });
    await edge.uploadModel('sigmoid-head', '1', sigmoid);
    const notSoftmax = await createTask(settings('ft-refused', { base: { model: 'sigmoid-head', version: '1' } }));
    expect(notSoftmax.status).toBe(422);
    expect(((await notSoftmax.json()) as { error: string }).error).toMatch(/ends in sigmoid; devices train softmax/);
    const tooDeep = await createTask(
      settings('ft-refused', { base: { model: 'sigmoid-head', version: '1' }, trainable: 'head:2' }),
    );
    expect(tooDeep.status).toBe(422);
    expect((await fetch(`${server.url}/v1/tasks/ft-refused`)).status).toBe(404);
  });

  it('a PyTorch CNN (Gemm head, fp32): devices train its head on their own digits; the round publishes the base graph with the averaged head, served at once', async () => {
    const base = fixture('pytorch-heads/pt-cnn-gemm.onnx');
    await edge.uploadModel('pt-digits', '1', base);
    const created = await createTask(
      settings('ft-gemm', { model: 'pt-digits', base: { model: 'pt-digits', version: '1' }, trainable: 'head' }),
    );
    expect(created.status).toBe(201);
    const head = detectHead(base);
    const s0 = await taskStatus('ft-gemm');
    expect(s0.base).toEqual({
      model: 'pt-digits',
      version: '1',
      trainable: 'head',
      layers: head.layers.flatMap((l) => l.nodes),
    });
    expect(Array.from(await taskWeights('ft-gemm'))).toEqual(Array.from(head.flat)); // the task starts from the served head
    // The base is pinned while the task may publish: deleting it is refused, naming the pin.
    const del = await fetch(`${server.url}/v1/models/pt-digits/versions/1`, { method: 'DELETE', headers: ADMIN });
    expect(del.status).toBe(409);
    expect(((await del.json()) as { error: string }).error).toMatch(
      /task\.ft-gemm \(federated task .ft-gemm. publishes into/,
    );

    await runRound('ft-gemm');
    const s = await taskStatus('ft-gemm');
    expect(s.history[0]).toMatchObject({ status: 'published', submitted: 3, unmasked: 3, version: 'r1' });
    const published = (await edge.modelBytes('pt-digits', 'federated')).bytes;
    expect(published.byteLength).toBe(base.byteLength);
    // The same graph: the body (everything but the head's weights) is byte-identical, the head holds the task's weights.
    expect(Buffer.from(headBody(published, head)).equals(Buffer.from(headBody(base, head)))).toBe(true);
    const after = await taskWeights('ft-gemm');
    expect(Array.from(detectHead(published).flat)).toEqual(Array.from(after));
    expect(after.some((w, i) => w !== head.flat[i])).toBe(true);
    const [v1, r1] = [await edge.model('pt-digits', '1'), await edge.model('pt-digits', 'r1')];
    expect([r1.inputs, r1.outputs]).toEqual([v1.inputs, v1.outputs]);
    const [before, now] = [
      await served('pt-digits', '1', [1, 28, 28]),
      await served('pt-digits', 'federated', [1, 28, 28]),
    ];
    console.log(
      `pt-cnn-gemm head, one DP round of 3 × 300 digits: held-out accuracy ${(before * 100).toFixed(1)} % → ${(now * 100).toFixed(1)} %`,
    );
    expect(now).toBeGreaterThan(before - 0.05); // one noisy round from 900 examples: not worse by much
    const local = await LocalModel.load({ client: edge, model: 'pt-digits', version: 'federated', cache: false });
    const x = { [v1.inputs[0]!.name]: { data: heldOut.x.subarray(0, 8 * 784), shape: [8, 1, 28, 28] } };
    const [onDevice, onEdge] = [await local.run(x), await edge.infer('pt-digits', x, { version: 'federated' })];
    expect(local.version).toBe('r1');
    (Object.values(onDevice.outputs)[0]!.data as Float32Array).forEach((v, i) =>
      expect(v).toBeCloseTo(Object.values(onEdge.outputs)[0]!.data[i] as number, 5),
    );
    await local.release();
  }, 240_000);

  it('an int8 base (the bundled mnist-mlp): the round publishes int8 again, the head quantized afresh from the averaged fp32 head', async () => {
    const created = await createTask(
      settings('ft-int8', { model: 'mnist-ft', base: { model: 'mnist-mlp', version: '1' } }),
    );
    expect(created.status).toBe(201);
    const base = (await edge.modelBytes('mnist-mlp', '1')).bytes;
    await runRound('ft-int8');
    expect((await taskStatus('ft-int8')).history[0]).toMatchObject({ status: 'published', version: 'r1' });
    const published = (await edge.modelBytes('mnist-ft', 'federated')).bytes;
    expect(published.byteLength).toBe(base.byteLength); // int8 in, int8 out: only the head's int8 data and scales changed
    const got = detectHead(published);
    expect(got.quantized).toBe(true);
    const want = await taskWeights('ft-int8');
    // Per-channel symmetric int8: each weight within half a quantization step of the average (scale = max|w| / 127).
    const maxAbs = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    got.flat.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(maxAbs / 127 / 2 + 1e-6));
    expect(await served('mnist-ft', 'federated', [784])).toBeGreaterThan(0.9);
  }, 240_000);
});
