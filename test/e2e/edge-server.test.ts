/**
 * End to end against the real local server (npm start's: the bundle on workerd, local R2 and SQLite on disk):
 * the bundled models classify real held-out MNIST digits and SpamAssassin messages; a body far over the limit gets
 * its 413; an uploaded model survives a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMnist } from '../../models/data/mnist.ts';
import { loadSpamAssassin } from '../../models/data/spam.ts';
import { hashTexts } from '../../federated/model/text-features.ts';
import { spamBow } from '../../models/specs.ts';
import { matmulModel } from '../fixtures/onnx-models.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';
import { servedAccuracy } from '../../simulate/simulation.ts';

const state = mkdtempSync(join(tmpdir(), 'fedge-e2e-'));
const ADMIN = { Authorization: 'Bearer dev-admin-token' }; // the local default in .dev.vars
let server: LocalServer | undefined;

afterAll(async () => {
  await server?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('local edge server', () => {
  it('classifies 500 real held-out digits with the bundled default model (binary and JSON)', async () => {
    server = await startLocalServer({ persistTo: state });
    const { test } = loadMnist();
    const n = 500;
    const held = { x: test.x.slice(0, n * 784), y: test.y.slice(0, n), n, features: 784 };
    expect(await servedAccuracy(server.url, 'mnist-mlp', undefined, held)).toBeGreaterThan(0.95); // binary extension

    const one = await fetch(`${server.url}/v2/models/mnist-mlp/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(test.x.subarray(0, 784)) }],
      }),
    });
    const json = (await one.json()) as { model_version: string; outputs: { data: number[] }[] };
    expect(json.model_version).toBe('1');
    const p = json.outputs[0]!.data;
    expect(p.indexOf(Math.max(...p))).toBe(test.y[0]);
  });

  it('serves the bundled CNN on held-out digits and the spam classifier on held-out messages', async () => {
    const argmaxAccuracy = async (model: string, x: Float32Array, shape: number[], y: Int32Array) => {
      const res = await fetch(`${server!.url}/v2/models/${model}/infer`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'input', shape, datatype: 'FP32', data: Array.from(x) }] }),
      });
      expect(res.status).toBe(200);
      const out = ((await res.json()) as { outputs: { shape: number[]; data: number[] }[] }).outputs[0]!;
      const classes = out.shape[1]!;
      let ok = 0;
      for (let i = 0; i < shape[0]!; i++) {
        const row = out.data.slice(i * classes, (i + 1) * classes);
        if (row.indexOf(Math.max(...row)) === y[i]) ok++;
      }
      return ok / shape[0]!;
    };
    const { test } = loadMnist();
    expect(await argmaxAccuracy('mnist-cnn', test.x.slice(0, 300 * 784), [300, 28, 28, 1], test.y)).toBeGreaterThan(
      0.97,
    );
    const spam = loadSpamAssassin().test;
    const n = 200;
    // Callers featurize text with the same hashing the model was trained on (fedge/federated hashTexts).
    expect(
      await argmaxAccuracy('spam-bow', hashTexts(spam.texts.slice(0, n), spamBow.features!), [n, 4096], spam.y),
    ).toBeGreaterThan(0.95);
  });

  it('answers an inference body over the limit with 413 every time, declared or chunked — never a reset or a 5xx', async () => {
    // 19 MiB: more than twice the 8 MiB limit; the dev server's proxy used to turn the dropped connection into a 500.
    const MiB = 1024 * 1024;
    const chunked = () => {
      let n = 0;
      const chunk = new Uint8Array(MiB).fill(32);
      return new ReadableStream<Uint8Array>({ pull: (c) => (n++ < 19 ? c.enqueue(chunk) : c.close()) });
    };
    for (let i = 0; i < 3; i++) {
      for (const body of [new Uint8Array(19 * MiB).fill(32), chunked()]) {
        const res = await fetch(`${server!.url}/v2/models/spam-bow/infer`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body,
          duplex: 'half',
        } as RequestInit);
        expect(res.status).toBe(413);
        expect(((await res.json()) as { error: string }).error).toMatch(/larger than the 8388608 bytes allowed/);
      }
    }
    // The server goes on answering on the same keep-alive pool.
    expect((await fetch(`${server!.url}/v2/health/ready`)).status).toBe(200);
  });

  it('keeps an uploaded model across a restart of the server', async () => {
    const up = await fetch(`${server!.url}/v1/models/e2e-matmul/versions/1`, {
      method: 'PUT',
      headers: { ...ADMIN, 'Content-Type': 'application/octet-stream' },
      body: matmulModel(),
    });
    expect(up.status).toBe(201);
    await server!.stop();
    server = await startLocalServer({ persistTo: state });
    const models = (await (await fetch(`${server.url}/v2/models`)).json()) as { models: { name: string }[] };
    expect(models.models.map((m) => m.name)).toEqual(expect.arrayContaining(['mnist-mlp', 'e2e-matmul']));
    const res = await fetch(`${server.url}/v2/models/e2e-matmul/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] }),
    });
    expect(((await res.json()) as any).outputs[0].data).toEqual([9, 12]);
  });
});
