/** Model management: admin auth, immutable versions, aliases, delete rules, refused writes change nothing. */
import { SELF, env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { addModel, constantOfShapeModel, expandModel, identityModel, matmulModel, reshapeModel, tileModel } from '../../fixtures/onnx-models.ts';
import { ADMIN, inferJson, upload, uploadOk, uniqueName } from '../helpers.ts';
import type { ModelCatalog } from '../../../functions/registry/model-catalog.ts';

const listModel = async (name: string) => {
  const { models } = (await (await SELF.fetch('http://edge/v2/models')).json()) as { models: { name: string }[] };
  return models.find((m) => m.name === name);
};
const put = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
  SELF.fetch(`http://edge/v1/models/${path}`, { method: 'PUT', headers: { ...ADMIN, 'Content-Type': 'application/json', ...headers }, body });
const del = (path: string, headers: Record<string, string> = ADMIN) => SELF.fetch(`http://edge/v1/models/${path}`, { method: 'DELETE', headers });
const y = async (path: string) => ((await (await inferJson(path, { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] })).json()) as any);

describe('uploads', () => {
  it('stores a version by its sha256 (201), accepts the same bytes again (200), refuses other bytes (409)', async () => {
    const name = uniqueName('up');
    const first = await upload(name, '1', matmulModel());
    expect(first.status).toBe(201);
    const meta = (await first.json()) as { sha256: string; inputs: unknown };
    expect(meta.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(meta.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }]);
    expect((await upload(name, '1', matmulModel())).status).toBe(200);
    const clash = await upload(name, '1', addModel());
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as any).error).toMatch(/already exists with different bytes/);
    expect((await y(name)).outputs[0].data).toEqual([9, 12]);
    // The blob sits in R2 under its sha256, and the catalog row in the Durable Object's SQLite.
    expect(await env.MODEL_BLOBS.head(`blobs/sha256/${meta.sha256}.onnx`)).not.toBeNull();
    const stub = env.MODEL_CATALOG.getByName('global');
    const rows = await runInDurableObject(stub, (_: ModelCatalog, state: DurableObjectState) => state.storage.sql.exec('SELECT sha256 FROM versions WHERE model = ?', name).toArray());
    expect(rows).toEqual([{ sha256: meta.sha256 }]);
  });

  it.each([
    ['random bytes', new Uint8Array(64).map((_, i) => (i * 37) & 255), /not a loadable ONNX model/],
    ['a truncated model', matmulModel().slice(0, 40), /not a loadable ONNX model/],
    ['an empty body', new Uint8Array(0), /body is empty/],
    ['text', new TextEncoder().encode('hello, I am not a model'), /not a loadable ONNX model/],
  ])('refuses %s with 400 and stores nothing', async (_, bytes, pattern) => {
    const name = uniqueName('corrupt');
    const res = await upload(name, '1', bytes);
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatch(pattern);
    expect(await listModel(name)).toBeUndefined();
  });

  it('refuses a wrong content type (415), an oversized body (413) and bad names (400)', async () => {
    const name = uniqueName('ct');
    expect((await upload(name, '1', matmulModel(), { 'Content-Type': 'application/json' })).status).toBe(415);
    expect((await upload(name, '1', new Uint8Array(5 * 1024 * 1024))).status).toBe(413);
    expect((await upload('bad name!', '1', matmulModel())).status).toBe(400);
    expect((await upload(name, '.hidden', matmulModel())).status).toBe(400);
    expect(await listModel(name)).toBeUndefined();
  });
});

describe('uploads are run once before they are stored', () => {
  const refused = async (bytes: Uint8Array, pattern: RegExp) => {
    const name = uniqueName('probe');
    const res = await upload(name, '1', bytes);
    const { error } = (await res.json()) as { error: string };
    expect({ status: res.status, error }).toMatchObject({ status: 400, error: expect.stringMatching(pattern) });
    expect(await listModel(name)).toBeUndefined();
    const rows = await runInDurableObject(env.MODEL_CATALOG.getByName('global'), (_: ModelCatalog, state: DurableObjectState) =>
      state.storage.sql.exec('SELECT sha256 FROM versions WHERE model = ?', name).toArray());
    expect(rows).toEqual([]);
  };
  it.each([
    ['a Reshape that fits no input', reshapeModel([2, 2]), /cannot run on inputs built from its metadata \(dynamic dimensions 1, zeros\): .*cannot be reshaped/],
    ['an Expand to 3·10¹⁰ elements', expandModel([100_000, 100_000, 3]), /cannot run .*Tensor shape is too large/],
    ['an Expand to 1.2 GB, beyond the WASM heap bound', expandModel([100_000, 1000, 3]), /cannot run .*out of memory/],
    ['outputs larger than a response may carry', tileModel([1000, 1000]), /output 'y' has shape \[1000,3000\] on inputs of batch 1: the outputs add up to more than the 300000 elements/],
    ['a fixed input shape larger than any request', identityModel('FP32', [1000, 1000]), /input 'x' has the fixed shape \[1000,1000\].*no request could run this model/],
  ])('refuses %s (400) and stores nothing', (_, bytes, pattern) => refused(bytes, pattern));

  it('stores a model whose size depends on its input values, and answers its failures with 400', async () => {
    // ConstantOfShape(shape): zeros make an empty output, so the probe passes; the values decide at inference.
    const name = uniqueName('probe-cos');
    expect((await upload(name, '1', constantOfShapeModel())).status).toBe(201);
    const run = (data: number[]) => inferJson(name, { inputs: [{ name: 'shape', shape: [2], datatype: 'INT64', data }] });
    expect(((await (await run([2, 2])).json()) as any).outputs[0]).toEqual({ name: 'y', datatype: 'FP32', shape: [2, 2], data: [0, 0, 0, 0] });
    expect((await run([100_000, 100_000])).status).toBe(400);
  });

  it('still serves the bundled models', async () => {
    const res = await inferJson('mnist-mlp', { inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }] });
    expect(res.status).toBe(200);
  });
});

describe('errors about model management quote little of the request', () => {
  it('a long alias target, name or version', async () => {
    const name = uniqueName('quote');
    await uploadOk(name, '1', matmulModel());
    const long = 'v'.repeat(60_000);
    const alias = await put(`${name}/aliases/stable`, JSON.stringify({ version: long }));
    expect(alias.status).toBe(404);
    expect(((await alias.json()) as any).error).toMatch(/has no version 'v{64}…'$/);
    const bad = await upload('b!'.repeat(4000), '1', matmulModel());
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.length).toBeLessThan(300);
    const gone = await del(`${name}/versions/${'x'.repeat(8000)}`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as any).error.length).toBeLessThan(300);
  });
});

describe('admin credentials', () => {
  it('401 without a token, 403 with a wrong one, for every admin route', async () => {
    const name = uniqueName('auth');
    const none = await upload(name, '1', matmulModel(), { Authorization: '' });
    expect(none.status).toBe(401);
    expect(none.headers.get('WWW-Authenticate')).toMatch(/Bearer/);
    expect((await upload(name, '1', matmulModel(), { Authorization: 'Bearer wrong' })).status).toBe(403);
    expect((await put(`${name}/aliases/prod`, '{"version":"1"}', { Authorization: 'Bearer wrong' })).status).toBe(403);
    expect((await del(`${name}/versions/1`, {})).status).toBe(401);
    expect(await listModel(name)).toBeUndefined();
  });
});

describe('aliases and deletes', () => {
  it('latest follows the newest upload; aliases move; the versioned path stays put', async () => {
    const name = uniqueName('alias');
    expect((await upload(name, 'a', matmulModel())).status).toBe(201);
    // Same input signature as 'a' (x: FP32 [n, 3]), so one request serves either version.
    expect((await upload(name, 'b', identityModel('FP32'))).status).toBe(201);
    expect((await listModel(name)) as any).toEqual({ name, versions: ['a', 'b'], aliases: { latest: 'b' } });
    // Served once before the move, so the isolate has the resolution cached: the move must still show at once.
    expect((await y(name)).model_version).toBe('b');
    const moved = await put(`${name}/aliases/latest`, JSON.stringify({ version: 'a' }));
    expect(moved.status).toBe(200);
    expect((await y(name)).model_version).toBe('a');
    expect((await put(`${name}/aliases/stable`, JSON.stringify({ version: 'zzz' }))).status).toBe(404);
    expect((await put(`${name}/aliases/stable`, '{"vers":1}')).status).toBe(400);
    expect((await put(`${name}/aliases/stable`, 'not json')).status).toBe(400);
    expect((await listModel(name)) as any).toEqual({ name, versions: ['a', 'b'], aliases: { latest: 'a' } });
  });

  it('sees a catalog write made outside this isolate within FEDGE_CATALOG_CACHE_MS', async () => {
    const name = uniqueName('stale');
    await uploadOk(name, 'a', matmulModel());
    await uploadOk(name, 'b', identityModel('FP32'));
    expect((await y(name)).model_version).toBe('b');
    // Straight to the Durable Object, as a FederatedTask publishing a version would: this isolate's
    // registry does not hear of it, so only the cache bound (1000 ms by default) makes it visible.
    const moved = await env.MODEL_CATALOG.getByName('global').setAlias(name, 'latest', 'a');
    expect(moved.status).toBe('ok');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await y(name)).model_version).toBe('a');
  });

  it('refuses to delete an aliased version (409); deletes an unaliased one and its unshared blob', async () => {
    const name = uniqueName('del');
    await upload(name, '1', matmulModel());
    // Bytes no other test uploads, so the blob is this version's alone.
    const v2 = (await (await upload(name, '2', identityModel('FP64', ['n', 13]))).json()) as { sha256: string };
    const refused = await del(`${name}/versions/2`);
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as any).error).toMatch(/alias latest/);
    expect((await del(`${name}/versions/9`)).status).toBe(404);
    expect((await put(`${name}/aliases/latest`, JSON.stringify({ version: '1' }))).status).toBe(200);
    expect((await del(`${name}/versions/2`)).status).toBe(200);
    expect((await listModel(name)) as any).toEqual({ name, versions: ['1'], aliases: { latest: '1' } });
    expect(await env.MODEL_BLOBS.head(`blobs/sha256/${v2.sha256}.onnx`)).toBeNull();
  });

  it('keeps a blob that another version still uses', async () => {
    const a = uniqueName('share-a'), b = uniqueName('share-b');
    const meta = (await (await upload(a, '1', matmulModel())).json()) as { sha256: string };
    await upload(b, '1', matmulModel());
    await upload(b, '2', addModel());
    expect((await del(`${b}/versions/1`)).status).toBe(200);
    expect(await env.MODEL_BLOBS.head(`blobs/sha256/${meta.sha256}.onnx`)).not.toBeNull();
    expect((await y(a)).outputs[0].data).toEqual([9, 12]);
  });
});

describe('CORS', () => {
  it('answers preflight and exposes the binary header to page scripts', async () => {
    const res = await SELF.fetch('http://edge/v2/models/x/infer', {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'inference-header-content-length' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('Access-Control-Allow-Headers')).toMatch(/Inference-Header-Content-Length/);
    const get = await SELF.fetch('http://edge/v2', { headers: { Origin: 'https://app.example' } });
    expect(get.headers.get('Access-Control-Expose-Headers')).toMatch(/Inference-Header-Content-Length/);
  });
});

describe('downloading model bytes for on-device inference', () => {
  it('serves a version’s ONNX by version (immutable, ETag = sha256) and by alias (names the version); 304 on a match; 404 for unknowns', async () => {
    const name = uniqueName('dl');
    await uploadOk(name, '1', matmulModel());
    const aliased = await put(`${name}/aliases/stable`, JSON.stringify({ version: '1' }));
    expect(aliased.status).toBe(200);
    const res = await SELF.fetch(`http://edge/v2/models/${name}/versions/1/onnx`);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array(matmulModel()));
    const sha = res.headers.get('Fedge-Model-Sha256')!;
    expect(res.headers.get('ETag')).toBe(`"${sha}"`);
    expect(res.headers.get('Cache-Control')).toMatch(/immutable/);
    expect((await SELF.fetch(`http://edge/v2/models/${name}/versions/1/onnx`, { headers: { 'If-None-Match': `"${sha}"` } })).status).toBe(304);
    const byAlias = await SELF.fetch(`http://edge/v2/models/${name}/versions/stable/onnx`);
    expect(byAlias.headers.get('Fedge-Model-Version')).toBe('1');
    expect(byAlias.headers.get('Cache-Control')).toBe('no-cache');
    const latest = await SELF.fetch(`http://edge/v2/models/${name}/onnx`);
    expect(latest.headers.get('Fedge-Model-Version')).toBe('1');
    const missing = await SELF.fetch(`http://edge/v2/models/${name}/versions/9/onnx`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toMatch(/has no version.*'9'/);
  });
});
