/** Model management: admin auth, immutable versions, aliases, delete rules, refused writes change nothing. */
import { SELF, env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import {
  addModel,
  constantOfShapeModel,
  expandModel,
  identityModel,
  matmulModel,
  reshapeModel,
  tileModel,
} from '../../fixtures/onnx-models.ts';
import { ADMIN, inferJson, upload, uploadOk, uniqueName } from '../helpers.ts';
import type { ModelCatalog } from '../../../functions/registry/model-catalog.ts';
import { ElemType, encodeModel, node, valueInfo } from '../../../federated/model/onnx-graph.ts';

const listModel = async (name: string) => {
  const { models } = (await (await SELF.fetch('http://edge/v2/models')).json()) as { models: { name: string }[] };
  return models.find((m) => m.name === name);
};
const put = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
  SELF.fetch(`http://edge/v1/models/${path}`, {
    method: 'PUT',
    headers: { ...ADMIN, 'Content-Type': 'application/json', ...headers },
    body,
  });
const del = (path: string, headers: Record<string, string> = ADMIN) =>
  SELF.fetch(`http://edge/v1/models/${path}`, { method: 'DELETE', headers });
const y = async (path: string) =>
  (await (
    await inferJson(path, { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] })
  ).json()) as any;

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
    const rows = await runInDurableObject(stub, (_: ModelCatalog, state: DurableObjectState) =>
      state.storage.sql.exec('SELECT sha256 FROM versions WHERE model = ?', name).toArray(),
    );
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

/** Whether the catalog holds any version of `name` (the Durable Object's own rows, not a cached resolution). */
const storedRows = (name: string) =>
  runInDurableObject(env.MODEL_CATALOG.getByName('global'), (_: ModelCatalog, state: DurableObjectState) =>
    state.storage.sql.exec('SELECT sha256 FROM versions WHERE model = ?', name).toArray(),
  );
const metadata = async (name: string) =>
  (
    (await (await SELF.fetch(`http://edge/v2/models/${name}`)).json()) as {
      parameters: { version: string; probe?: unknown };
    }
  ).parameters;
const expectRefused = async (res: Response, status: number, pattern: RegExp, name: string) => {
  const { error } = (await res.json()) as { error: string };
  expect({ status: res.status, error }).toMatchObject({ status, error: expect.stringMatching(pattern) });
  expect(await listModel(name)).toBeUndefined();
  expect(await storedRows(name)).toEqual([]);
};
const withWarmup = (warmup: string | string[]) => (name: string, version: string, bytes: Uint8Array) => {
  const q = new URLSearchParams();
  for (const w of [warmup].flat()) q.append('warmup', w);
  return SELF.fetch(`http://edge/v1/models/${name}/versions/${version}?${q}`, {
    method: 'PUT',
    headers: { ...ADMIN, 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
};

describe('uploads are run once before they are stored', () => {
  it.each([
    [
      'an Expand to 1.2 GB at batch 1, beyond the WASM heap bound',
      expandModel([100_000, 1000, 3]),
      /cannot run on inputs built from its metadata \(dynamic dimensions 1, zeros\): out of memory/,
    ],
    [
      'outputs larger than a response may carry at batch 1',
      tileModel([1000, 1000]),
      /output 'y' has shape \[1000,3000\] on inputs of batch 1: the outputs add up to more than the 300000 elements/,
    ],
    [
      'a fixed input shape larger than any request',
      identityModel('FP32', [1000, 1000]),
      /input 'x' has the fixed shape \[1000,1000\].*no request could run this model/,
    ],
  ])('refuses %s (400) and stores nothing: larger inputs would only need more', async (_, bytes, pattern) => {
    const name = uniqueName('probe');
    await expectRefused(await upload(name, '1', bytes), 400, pattern, name);
  });

  it('reports a passing run on generated inputs in the answer and the metadata', async () => {
    const name = uniqueName('probe-ok');
    const res = await upload(name, '1', matmulModel());
    expect(res.status).toBe(201);
    const verdict = { ok: true, inputs: 'generated', shapes: 'x:1x3' };
    expect(((await res.json()) as { probe: unknown }).probe).toEqual(verdict);
    expect((await metadata(name)).probe).toEqual(verdict);
  });

  it.each([
    // x [n, 3] reshaped to [2, 3]: runs only at n = 2; the probe's n = 1 (and its second try: `n` is a batch) fail.
    [
      'a Reshape that fits only n = 2',
      reshapeModel([2, 3]),
      'x:1x3',
      /cannot be reshaped to the requested shape. Input shape:\{1,3\}, requested shape:\{2,3\}/,
    ],
    ['an Expand to 3·10¹⁰ elements', expandModel([100_000, 100_000, 3]), 'x:1x3', /Tensor shape is too large/],
  ])(
    'stores %s that fails on generated inputs (201) and reports the failed verdict',
    async (_, bytes, shapes, reason) => {
      const name = uniqueName('probe-guess');
      const res = await upload(name, '1', bytes);
      expect(res.status).toBe(201);
      const { probe } = (await res.json()) as { probe: { ok: boolean; inputs: string; shapes: string; error: string } };
      expect(probe).toEqual({ ok: false, inputs: 'generated', shapes, error: expect.stringMatching(reason) });
      expect(probe.error).not.toMatch(/\/mnt\/|\.cc:|OrtRun/);
      expect((await metadata(name)).probe).toEqual(probe);
      expect(await storedRows(name)).toHaveLength(1);
    },
  );

  it('runs the warm-up instead: a good one stores with probe ok, and the model serves those shapes', async () => {
    const name = uniqueName('warm-ok');
    const res = await withWarmup('x:2x3')(name, '1', reshapeModel([2, 3]));
    expect(res.status).toBe(201);
    const verdict = { ok: true, inputs: 'warmup', shapes: 'x:2x3' };
    expect(((await res.json()) as { probe: unknown }).probe).toEqual(verdict);
    expect((await metadata(name)).probe).toEqual(verdict);
    const run = await inferJson(name, {
      inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }],
    });
    expect(((await run.json()) as any).outputs[0]).toMatchObject({
      name: 'y',
      shape: [2, 3],
      data: [1, 2, 3, 4, 5, 6],
    });
  });

  it('takes values, scalars, several warmup parameters and ONNX names with colons; inputs of fixed shape may be left out', async () => {
    // ConstantOfShape(shape [2]): the value decides the output; `shape` is fixed, so it may be left out (zeros).
    const name = uniqueName('warm-val');
    const res = await withWarmup('shape:2=3')(name, '1', constantOfShapeModel());
    expect(res.status).toBe(201);
    expect(((await res.json()) as { probe: unknown }).probe).toEqual({
      ok: true,
      inputs: 'warmup',
      shapes: 'shape:2=3',
    });
    const omitted = await withWarmup(',')(uniqueName('warm-empty'), '1', constantOfShapeModel());
    expect(omitted.status).toBe(400);
    const both = uniqueName('warm-two');
    const two = await withWarmup(['a:2x4', 'b:2x4=1.5'])(both, '1', addModel());
    expect(((await two.json()) as { probe: unknown }).probe).toEqual({
      ok: true,
      inputs: 'warmup',
      shapes: 'a:2x4,b:2x4=1.5',
    });
    // An exporter's name such as onnx::x: the shape follows the last ':'.
    const colons = encodeModel({
      name: 'colons',
      node: [node('Identity', ['onnx::x'], ['y'])],
      input: [valueInfo('onnx::x', ElemType.FLOAT, ['n', 3])],
      output: [valueInfo('y', ElemType.FLOAT, ['n', 3])],
    });
    const named = await withWarmup('onnx::x:2x3=-0.5')(uniqueName('warm-colon'), '1', colons);
    expect(((await named.json()) as { probe: unknown }).probe).toEqual({
      ok: true,
      inputs: 'warmup',
      shapes: 'onnx::x:2x3=-0.5',
    });
  });

  it.each([
    [
      'a Reshape given the wrong size',
      reshapeModel([2, 3]),
      'x:4x3',
      /^the model failed on the warm-up inputs \(x:4x3\): .*cannot be reshaped/,
    ],
    [
      'a value that makes the output too large to allocate',
      constantOfShapeModel(),
      'shape:2=100000',
      /^the model failed on the warm-up inputs \(shape:2=100000\): .*Tensor shape is too large/,
    ],
    [
      'outputs larger than a response may carry',
      tileModel([1000, 1]),
      'x:200x3',
      /output 'y' has shape \[200000,3\] on the warm-up inputs: the outputs add up to more than/,
    ],
  ])('refuses %s with 400 when the warm-up fails, and stores nothing', async (_, bytes, warmup, pattern) => {
    const name = uniqueName('warm-bad');
    await expectRefused(await withWarmup(warmup)(name, '1', bytes), 400, pattern, name);
  });

  it.each([
    [
      '',
      /^warmup is empty; give name:d1xd2x…\[=value\] per input, comma-separated \(e\.g\. input:1x512,state:2x1x128,sr:=16000/,
    ],
    ['x', /^warmup entry 'x' is not name:d1xd2x…\[=value\]/],
    ['x:1by3', /^warmup entry 'x:1by3' is not name:d1xd2x…/],
    ['x:1x-3', /^warmup entry 'x:1x-3' is not/],
    ['x:2x3,', /^warmup entry '' is not/],
    [':2x3', /^warmup entry ':2x3' is not/],
    ['x:2x3:4', /^warmup names 'x:2x3', which is not an input/], // the shape follows the last ':'
    ['x:2x3,x:2x3', /^warmup names input 'x' twice/],
    ['x:99999999999999999999x3', /^warmup entry .*: a dimension is too large/],
    ['y:2x3', /^warmup names 'y', which is not an input; the model takes 'x' \[-1,3\]/],
    ['x:2x4', /^warmup: input 'x': shape \[2,4\] does not fit the model's \[-1,3\]/],
    ['x:2x3x1', /^warmup: input 'x': shape \[2,3,1\] does not fit/],
    ['x:2x3=abc', /^warmup: input 'x' element 0: expected a finite number, got NaN/],
    ['x:2x3=', /^warmup: input 'x' element 0: expected a finite number, got ""/],
    ['x:1000x1000', /^warmup: input 'x' of shape \[1000,1000\] has more elements than the 300000 a request may carry/],
  ])('refuses the warm-up %j with a clear 400 before storing anything', async (warmup, pattern) => {
    const name = uniqueName('warm-syntax');
    await expectRefused(await withWarmup(warmup)(name, '1', reshapeModel([2, 3])), 400, pattern, name);
  });

  it('refuses a warm-up that leaves out an input with open dimensions', async () => {
    const name = uniqueName('warm-missing');
    await expectRefused(
      await withWarmup('a:1x4')(name, '1', addModel()),
      400,
      /^warmup gives no shape for 'b' \[-1,4\]: every input with open dimensions \(-1\) needs one/,
      name,
    );
  });

  it('the same bytes again with a warm-up: run again; a passing verdict replaces the stored one, a failing one changes nothing', async () => {
    const name = uniqueName('warm-again');
    const bytes = reshapeModel([2, 3]);
    expect((await upload(name, '1', bytes)).status).toBe(201);
    expect((await metadata(name)).probe).toMatchObject({ ok: false, inputs: 'generated' });
    const failed = await withWarmup('x:3x3')(name, '1', bytes);
    expect(failed.status).toBe(400);
    expect((await metadata(name)).probe).toMatchObject({ ok: false, inputs: 'generated' });
    const again = await withWarmup('x:2x3')(name, '1', bytes);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { probe: unknown }).probe).toEqual({ ok: true, inputs: 'warmup', shapes: 'x:2x3' });
    expect((await metadata(name)).probe).toEqual({ ok: true, inputs: 'warmup', shapes: 'x:2x3' });
    // Without a warm-up the same bytes change nothing; other bytes under the version are still a 409.
    expect(((await (await upload(name, '1', bytes)).json()) as { probe: unknown }).probe).toMatchObject({
      ok: true,
      inputs: 'warmup',
    });
    expect((await withWarmup('x:2x3')(name, '1', reshapeModel([3, 2]))).status).toBe(409);
  });

  it('stores a model whose size depends on its input values, and answers its failures with 400', async () => {
    // ConstantOfShape(shape): zeros make an empty output, so the probe passes; the values decide at inference.
    const name = uniqueName('probe-cos');
    expect((await upload(name, '1', constantOfShapeModel())).status).toBe(201);
    const run = (data: number[]) =>
      inferJson(name, { inputs: [{ name: 'shape', shape: [2], datatype: 'INT64', data }] });
    expect(((await (await run([2, 2])).json()) as any).outputs[0]).toEqual({
      name: 'y',
      datatype: 'FP32',
      shape: [2, 2],
      data: [0, 0, 0, 0],
    });
    expect((await run([100_000, 100_000])).status).toBe(400);
  });

  it('still serves the bundled models, which carry no probe verdict', async () => {
    const res = await inferJson('mnist-mlp', {
      inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }],
    });
    expect(res.status).toBe(200);
    expect((await metadata('mnist-mlp')).probe).toBeUndefined();
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
    const a = uniqueName('share-a'),
      b = uniqueName('share-b');
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
      headers: {
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'inference-header-content-length',
      },
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
    expect(
      (await SELF.fetch(`http://edge/v2/models/${name}/versions/1/onnx`, { headers: { 'If-None-Match': `"${sha}"` } }))
        .status,
    ).toBe(304);
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
