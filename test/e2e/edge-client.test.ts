/**
 * EdgeClient and LocalModel in Node against the real local edge (wrangler dev on workerd): typed arrays in and out,
 * JSON and binary tensors agree, errors carry the server's status and words, admin calls need the token; retries
 * honour Retry-After, attempts time out, an AbortSignal stops a call — against small 127.0.0.1 servers that
 * answer 429 or never answer, as an overloaded or unreachable edge would. LocalModel runs on WASM in Node.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeClient, LocalModel, MemoryModelCache, TensorError } from '../../client-sdk/index.ts';
import { retryAfterMs } from '../../client-sdk/edge/http.ts';
import { accuracy } from '../../federated/model/accuracy.ts';
import { MODEL_SPEC_FORMAT } from '../../federated/model/model-spec.ts';
import { toBase64 } from '../../federated/bytes.ts';
import { hashTexts } from '../../federated/model/text-features.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { matmulModel } from '../fixtures/onnx-models.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';

const state = mkdtempSync(join(tmpdir(), 'fedge-client-'));
let server: LocalServer;
let edge: EdgeClient;
const { test } = loadMnist();
const x = test.x.slice(0, 4 * 784);

beforeAll(async () => {
  server = await startLocalServer({ persistTo: state });
  edge = new EdgeClient({ url: server.url, adminToken: 'dev-admin-token' });
});
afterAll(async () => {
  await server?.stop();
  rmSync(state, { recursive: true, force: true });
});

/** A 127.0.0.1 server answering with `handler`; counts requests. */
async function stubServer(
  handler: (n: number, res: import('node:http').ServerResponse) => void,
): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const s: Server = createServer((_req, res) => handler(++n, res));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as { port: number }).port}`,
    count: () => n,
    close: () =>
      new Promise((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

describe('EdgeClient', () => {
  it('infers with typed arrays in and out; JSON and binary tensors give the same outputs', async () => {
    const bin = await edge.infer('mnist-mlp', { input: { data: x, shape: [4, 784] } });
    const json = await edge.infer(
      'mnist-mlp',
      { input: { data: x, shape: [4, 784] } },
      { binary: false, binaryOutputs: false },
    );
    expect(bin.outputs.probabilities!.shape).toEqual([4, 10]);
    expect(bin.outputs.probabilities!.data).toBeInstanceOf(Float32Array);
    expect(bin.outputs.probabilities!.datatype).toBe('FP32');
    for (let i = 0; i < 40; i++)
      expect(json.outputs.probabilities!.data[i]).toBeCloseTo(bin.outputs.probabilities!.data[i] as number, 6);
    expect(bin.version).toBe((await edge.model('mnist-mlp')).parameters.version);
    expect(bin.provider).toMatch(/wasm/);
    expect(accuracy(bin.outputs.probabilities!.data as Float32Array, test.y.subarray(0, 4))).toBeGreaterThanOrEqual(
      0.75,
    );
    expect((await edge.models()).map((m) => m.name)).toEqual(
      expect.arrayContaining(['mnist-mlp', 'mnist-cnn', 'spam-bow']),
    );
    expect(await edge.ready()).toBe(true);
    expect((await edge.server()).extensions).toContain('binary_tensor_data');
  });

  it('errors carry the status and the server’s words; bad tensors never leave the client', async () => {
    await expect(edge.infer('no-such-model', { input: { data: x, shape: [4, 784] } })).rejects.toMatchObject({
      name: 'EdgeError',
      status: 404,
      message: expect.stringMatching(/no-such-model/),
    });
    await expect(
      edge.infer('mnist-mlp', { input: { data: x.subarray(0, 780), shape: [1, 780] } }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/780/) });
    await expect(edge.infer('mnist-mlp', { input: { data: x, shape: [3, 784] } })).rejects.toThrow(TensorError);
    await expect(edge.infer('mnist-mlp', { input: { data: x, shape: [3, 784] } })).rejects.toThrow(
      /needs 2352 elements, data has 3136/,
    );
    await expect(new EdgeClient({ url: server.url }).uploadModel('m', '1', new Uint8Array(4))).rejects.toMatchObject({
      status: 401,
      message: expect.stringMatching(/admin token/),
    });
  });

  it('admin calls: upload a version, move an alias, download the bytes, delete', async () => {
    const bytes = new Uint8Array(matmulModel());
    expect(await edge.uploadModel('client-mm', '1', bytes)).toMatchObject({
      model: 'client-mm',
      version: '1',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(await edge.setAlias('client-mm', 'stable', '1')).toMatchObject({ alias: 'stable', version: '1' });
    const got = await edge.modelBytes('client-mm', 'stable');
    expect(got.version).toBe('1');
    expect(got.bytes).toEqual(bytes);
    const y = await edge.infer(
      'client-mm',
      { x: { data: new Float32Array([1, 1, 1]), shape: [1, 3] } },
      { version: 'stable' },
    );
    expect(Array.from(y.outputs.y!.data as Float32Array)).toEqual([9, 12]);
    await expect(edge.deleteVersion('client-mm', '1')).rejects.toMatchObject({ status: 409 });
  });

  it('task lifecycle: pauseTask, tasks({ status }), resumeTask, finishTask, deleteTask', async () => {
    const spec = {
      format: MODEL_SPEC_FORMAT,
      name: 'life',
      inputShape: [4],
      inputName: 'input',
      outputName: 'probabilities',
      labels: ['a', 'b', 'c'],
      layers: [{ type: 'dense', units: 3, activation: 'softmax' }],
    };
    await edge.createTask({
      task: 'client-life',
      model: 'client-life',
      spec,
      weights: toBase64(new Uint8Array(60)),
      rounds: 2,
      devicesPerRound: 3,
      minDevices: 3,
      enrollmentToken: 'token-0123456789abcdef',
    });
    expect(await edge.pauseTask('client-life')).toEqual({ task: 'client-life', status: 'paused' });
    expect((await edge.tasks({ status: 'paused' })).tasks.map((t) => t.task)).toContain('client-life');
    expect((await edge.tasks({ status: 'running' })).tasks.map((t) => t.task)).not.toContain('client-life');
    expect(await edge.resumeTask('client-life')).toEqual({ task: 'client-life', status: 'running' });
    expect(await edge.finishTask('client-life')).toEqual({ task: 'client-life', status: 'finished' });
    expect((await edge.task('client-life')).status).toBe('finished');
    expect(await edge.deleteTask('client-life')).toEqual({ task: 'client-life', deleted: true });
    await expect(edge.task('client-life')).rejects.toMatchObject({ name: 'EdgeError', status: 404 });
    await expect(new EdgeClient({ url: server.url }).pauseTask('x')).rejects.toMatchObject({ status: 401 });
  });

  it('uploads Silero VAD v5: stored with a failed probe on generated inputs, then ok with warm-up inputs; a failing warm-up is refused', async () => {
    const silero = new Uint8Array(
      readFileSync(join(import.meta.dirname, '../fixtures/third-party/silero-vad-v5.onnx')),
    );
    expect((await edge.uploadModel('client-vad', '1', silero)).probe).toMatchObject({
      ok: false,
      inputs: 'generated',
      error: expect.stringMatching(/Pad reflect/),
    });
    expect(
      (await edge.uploadModel('client-vad', '1', silero, { warmup: 'input:1x512,state:2x1x128,sr:=16000' })).probe,
    ).toMatchObject({ ok: true, inputs: 'warmup' });
    await expect(
      edge.uploadModel('client-vad', '2', silero, { warmup: 'input:1x1,state:2x1x128,sr:=16000' }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/warm-up/) });
    await expect(edge.model('client-vad', '2')).rejects.toMatchObject({ status: 404 });
  });

  it('lists tasks a page at a time, and a task says how many devices its rounds wait for', async () => {
    // 2 inputs → 2 classes: 6 parameters.
    const spec = {
      format: MODEL_SPEC_FORMAT,
      name: 'client-tiny',
      inputShape: [2],
      layers: [{ type: 'dense', units: 2, activation: 'softmax' }],
      inputName: 'input',
      outputName: 'probabilities',
      labels: ['a', 'b'],
    };
    const weights = toBase64(new Uint8Array(new Float32Array(6).buffer));
    for (const task of ['client-task-a', 'client-task-b']) {
      await edge.createTask({
        task,
        model: task,
        spec,
        weights,
        rounds: 2,
        devicesPerRound: 5,
        minDevices: 4,
        stageSeconds: 600,
        update: { clip: 1, maxExamples: 10 },
        enrollmentToken: 'enroll-client-0123456789',
      });
    }
    const first = await edge.tasks({ limit: 1 });
    expect(first.tasks.map((t) => t.task)).toEqual(['client-task-a']);
    const second = await edge.tasks({ after: first.next!, limit: 1 });
    expect(second.tasks[0]).toMatchObject({
      task: 'client-task-b',
      round: 1,
      stage: 'advertise-keys',
      devicesPerRound: 5,
      enrolledDevices: 0,
      published: 0,
    });
    expect((await edge.task('client-task-b')).minDevices).toBe(4);
  });

  it('retries 429 after Retry-After, times out attempts, stops on abort', async () => {
    const busy = await stubServer((n, res) => {
      if (n === 1)
        return res
          .writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' })
          .end('{"error":"slow down"}');
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"name":"stub","version":"1","extensions":[]}');
    });
    const started = Date.now();
    expect((await new EdgeClient({ url: busy.url }).server()).name).toBe('stub');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(busy.count()).toBe(2);
    await busy.close();

    const always = await stubServer((_n, res) =>
      res.writeHead(503, { 'Retry-After': '0', 'Content-Type': 'application/json' }).end('{"error":"overloaded"}'),
    );
    await expect(new EdgeClient({ url: always.url, retries: 2 }).server()).rejects.toMatchObject({
      status: 503,
      message: 'overloaded',
    });
    expect(always.count()).toBe(3);
    await always.close();

    const silent = await stubServer(() => undefined); // never answers
    await expect(new EdgeClient({ url: silent.url, timeoutMs: 200, retries: 1 }).server()).rejects.toMatchObject({
      name: 'EdgeError',
      status: 0,
      message: expect.stringMatching(/no answer .* within 200 ms/),
    });
    expect(silent.count()).toBe(2);
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('user left the page')), 100);
    await expect(new EdgeClient({ url: silent.url }).server({ signal: abort.signal })).rejects.toThrow(
      'user left the page',
    );
    await silent.close();
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

const MAILS = [
  'WINNER!! Claim your $5,000 prize now, click the link',
  "Minutes of Thursday's release meeting, comments welcome",
];

describe('text in, for text models', () => {
  it('EdgeClient sends strings as BYTES, JSON and binary alike, and the edge featurizes them as the Trainer does', async () => {
    const meta = await edge.model('spam-bow');
    const f = meta.inputs[0]!.featurizer!;
    expect(f).toMatchObject({ kind: 'hashedBagOfWords', buckets: 4096 });
    const text = { input: { data: MAILS, shape: [2] } };
    const json = await edge.infer('spam-bow', text, { binary: false, binaryOutputs: false });
    const bin = await edge.infer('spam-bow', text, { binary: true });
    const vector = await edge.infer('spam-bow', { input: { data: hashTexts(MAILS, f), shape: [2, f.buckets] } });
    expect(Array.from(bin.outputs.probabilities!.data as Float32Array)).toEqual(
      Array.from(vector.outputs.probabilities!.data as Float32Array),
    );
    (json.outputs.probabilities!.data as Float32Array).forEach((v, i) =>
      expect(v).toBeCloseTo(vector.outputs.probabilities!.data[i] as number, 6),
    );
    const p = vector.outputs.probabilities!.data as Float32Array;
    expect(p[1]).toBeGreaterThan(0.5); // [ham, spam]: the prize mail is spam
    expect(p[2]).toBeGreaterThan(0.5); // the minutes are ham
  });

  it("LocalModel takes the same strings on the device, featurized by the model's own declaration", async () => {
    const m = await LocalModel.load({ client: edge, model: 'spam-bow', cache: false });
    const local = await m.run({ input: { data: MAILS, shape: [2] } });
    const remote = await edge.infer('spam-bow', { input: { data: MAILS, shape: [2] } });
    (local.outputs.probabilities!.data as Float32Array).forEach((v, i) =>
      expect(v).toBeCloseTo(remote.outputs.probabilities!.data[i] as number, 5),
    );
    await expect(m.run({ input: { data: [1, 2], shape: [2] } })).rejects.toThrow(/refused the inputs/);
    expect(() => m.run({ input: { data: ['a', 3] as never, shape: [2] } })).toThrow(TensorError);
    await m.release();
  });
});

describe('LocalModel in Node', () => {
  it('downloads once, caches by sha256, runs on WASM with the edge’s outputs', async () => {
    const cache = new MemoryModelCache();
    const m = await LocalModel.load({ client: edge, model: 'mnist-mlp', cache });
    expect(m.provider).toBe('wasm'); // no WebGPU in Node
    expect(m.fromCache).toBe(false);
    const local = await m.run({ input: { data: x, shape: [4, 784] } });
    const remote = await edge.infer('mnist-mlp', { input: { data: x, shape: [4, 784] } });
    (local.outputs.probabilities!.data as Float32Array).forEach((v, i) =>
      expect(v).toBeCloseTo(remote.outputs.probabilities!.data[i] as number, 5),
    );
    const again = await LocalModel.load({ client: edge, model: 'mnist-mlp', cache });
    expect(again.fromCache).toBe(true);
    expect(again.sha256).toBe(m.sha256);
    await m.release();
    await expect(m.run({ input: { data: x, shape: [4, 784] } })).rejects.toThrow(/released/);
    const fromBytes = await LocalModel.load({
      model: 'mm',
      bytes: readFileSync(new URL('../../models/mnist-mlp/model.int8.onnx', import.meta.url)),
    });
    expect(fromBytes.sha256).toBe(m.sha256);
    await again.release();
    await fromBytes.release();
  });
});
