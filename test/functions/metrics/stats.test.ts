/**
 * Triton's statistics extension (GET /v2/models[/{name}[/versions/{v}]]/stats) and the model_repository index
 * (POST /v2/repository/index): counts move exactly with the inferences made, in Triton's shape; unknown models 404.
 */
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { matmulModel, reshapeModel } from '../../fixtures/onnx-models.ts';
import * as R from '../../../functions/contract/schemas/index.ts';
import { inferJson, uniqueName, uploadOk } from '../helpers.ts';

const MATMUL = uniqueName('stats-matmul');
const RESHAPE = uniqueName('stats-reshape');
const rows = (n: number) => ({
  inputs: [{ name: 'x', shape: [n, 3], datatype: 'FP32', data: new Array(n * 3).fill(1) }],
});

const get = async (path: string, status = 200) => {
  const res = await SELF.fetch(`http://edge${path}`);
  expect(res.status, path).toBe(status);
  return (await res.json()) as any;
};
const index = (body?: string, headers: Record<string, string> = { 'Content-Type': 'application/json' }) =>
  SELF.fetch('http://edge/v2/repository/index', { method: 'POST', headers: body === undefined ? {} : headers, body });

beforeAll(async () => {
  await uploadOk(MATMUL, '1', matmulModel());
  await uploadOk(RESHAPE, '1', reshapeModel([1, 3])); // runs on a batch of 1 only
});

describe('GET …/stats (Triton statistics extension)', () => {
  it('starts at zero for a version never run here (the upload probe is not an inference)', async () => {
    const body = R.modelStatsResponse.parse(await get(`/v2/models/${MATMUL}/stats`));
    const zero = { count: 0, ns: 0 };
    expect(body).toEqual({
      model_stats: [
        {
          name: MATMUL,
          version: '1',
          last_inference: 0,
          inference_count: 0,
          execution_count: 0,
          inference_stats: {
            success: zero,
            fail: zero,
            queue: zero,
            compute_input: zero,
            compute_infer: zero,
            compute_output: zero,
          },
          batch_stats: [],
        },
      ],
    });
  });

  it('counts batch items (inference_count) and runs (execution_count) of successful inferences', async () => {
    const before = Date.now();
    expect((await inferJson(MATMUL, rows(4))).status).toBe(200);
    expect((await inferJson(`${MATMUL}/versions/1`, rows(1))).status).toBe(200);
    const [s] = R.modelStatsResponse.parse(await get(`/v2/models/${MATMUL}/versions/1/stats`)).model_stats as any[];
    expect(s).toMatchObject({ name: MATMUL, version: '1', inference_count: 5, execution_count: 2 });
    expect(s.last_inference).toBeGreaterThanOrEqual(before);
    const is = s.inference_stats;
    for (const k of ['success', 'queue', 'compute_input', 'compute_infer', 'compute_output'])
      expect(is[k].count, k).toBe(2);
    expect(is.fail).toEqual({ count: 0, ns: 0 });
    for (const k of Object.keys(is)) expect(Number.isInteger(is[k].ns) && is[k].ns >= 0, k).toBe(true);
    // Phases are parts of the whole run.
    expect(is.queue.ns + is.compute_input.ns + is.compute_infer.ns + is.compute_output.ns).toBeLessThanOrEqual(
      is.success.ns + 4,
    );
    expect(s.batch_stats.map((b: any) => [b.batch_size, b.compute_infer.count])).toEqual([
      [1, 1],
      [4, 1],
    ]);
  });

  it('counts a run the model refuses as a failure, and nothing else', async () => {
    expect((await inferJson(RESHAPE, rows(2))).status).toBe(400); // the Reshape does not fit 2 rows
    expect((await inferJson(RESHAPE, rows(1))).status).toBe(200);
    const [s] = (await get(`/v2/models/${RESHAPE}/stats`)).model_stats;
    expect(s).toMatchObject({ inference_count: 1, execution_count: 1 });
    expect(s.inference_stats.fail.count).toBe(1);
    expect(s.inference_stats.success.count).toBe(1);
    // A request refused before the model runs (wrong shape) is not an inference.
    expect(
      (await inferJson(RESHAPE, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }))
        .status,
    ).toBe(400);
    expect((await get(`/v2/models/${RESHAPE}/stats`)).model_stats[0].inference_stats.fail.count).toBe(1);
  });

  it('resolves aliases and lists every version of every model', async () => {
    const latest = (await get(`/v2/models/${MATMUL}/versions/latest/stats`)).model_stats;
    expect(latest.map((s: any) => [s.name, s.version])).toEqual([[MATMUL, '1']]);
    const all = R.modelStatsResponse
      .parse(await get('/v2/models/stats'))
      .model_stats.map((s) => `${s.name}/${s.version}`);
    expect(all).toEqual(
      expect.arrayContaining(['mnist-mlp/1', 'mnist-cnn/1', 'spam-bow/1', `${MATMUL}/1`, `${RESHAPE}/1`]),
    );
  });

  it('answers 404 for an unknown model or version, as the other routes do', async () => {
    expect(await get('/v2/models/no-such-model/stats', 404)).toEqual({ error: "unknown model 'no-such-model'" });
    expect((await get('/v2/models/no-such-model/versions/1/stats', 404)).error).toMatch(/unknown model/);
    expect((await get(`/v2/models/${MATMUL}/versions/nope/stats`, 404)).error).toMatch(/no version or alias 'nope'/);
  });
});

describe('POST /v2/repository/index (model_repository extension)', () => {
  it('lists the bundled models and which versions this isolate has loaded', async () => {
    expect((await inferJson(MATMUL, rows(1))).status).toBe(200);
    const res = await index();
    expect(res.status).toBe(200);
    const entries = R.repositoryIndex.parse(await res.json());
    const by = new Map(entries.map((e) => [`${e.name}/${e.version}`, e]));
    for (const m of ['mnist-mlp/1', 'mnist-cnn/1', 'spam-bow/1']) expect(by.get(m), m).toBeTruthy();
    expect(by.get(`${MATMUL}/1`)).toEqual({ name: MATMUL, version: '1', state: 'READY' });
    for (const e of entries) {
      expect(['READY', 'UNAVAILABLE']).toContain(e.state);
      if (e.state === 'UNAVAILABLE') expect(e.reason).toMatch(/not loaded in this isolate/);
    }
  });

  it('lists only READY versions when asked, and refuses a bad body', async () => {
    expect((await SELF.fetch('http://edge/v2/models/mnist-cnn/versions/1/ready')).status).toBe(200);
    const ready = R.repositoryIndex.parse(await (await index('{"ready":true}')).json());
    expect(ready.length).toBeGreaterThan(0);
    expect(ready.every((e) => e.state === 'READY')).toBe(true);
    expect(ready.map((e) => `${e.name}/${e.version}`)).toContain('mnist-cnn/1');
    expect((await index('{}')).status).toBe(200);
    expect((await index('{"ready":"yes"}')).status).toBe(400);
    expect((await index('{"ready":', { 'Content-Type': 'application/json' })).status).toBe(400);
    expect((await index('{"ready":true}', { 'Content-Type': 'text/plain' })).status).toBe(415);
  });
});

describe('GET /v2', () => {
  it('lists the statistics and model_repository extensions', async () => {
    expect((await get('/v2')).extensions).toEqual(['binary_tensor_data', 'statistics', 'model_repository']);
  });
});
