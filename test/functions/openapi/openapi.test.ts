/**
 * GET /openapi.json: an OpenAPI 3.1 document that covers every route the app serves (held to Hono's own route list,
 * so a new route without docs fails here), whose request bodies are the routes' zod schemas, whose error responses
 * are `{error}` with the 4xx statuses each route answers — checked against real answers — and whose response
 * schemas accept what the routes really send.
 */
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import app from '../../../functions/app.ts';
import { inferRequestSchema } from '../../../functions/inference/infer-request.ts';
import { aliasBody } from '../../../functions/contract/schemas/models.ts';
import {
  enrollBody,
  evaluationBody,
  taskBody as taskBodySchema,
} from '../../../functions/contract/schemas/task-bodies.ts';
import * as R from '../../../functions/contract/schemas/index.ts';
import { ADMIN, uniqueName } from '../helpers.ts';
import { taskBody } from '../tasks/fixtures.ts';

type Json = Record<string, any>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

const fetchDoc = async () => {
  const res = await SELF.fetch('http://edge/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers.get('Content-Type')).toMatch(/^application\/json/);
  expect(res.headers.get('X-Request-Id')).toBeTruthy();
  return (await res.json()) as Json;
};
let doc: Json;
beforeAll(async () => {
  // Warm up as a client does (readiness registers the bundled models) before the probes below refuse requests.
  expect((await SELF.fetch('http://edge/v2/health/ready')).status).toBe(200);
  doc = await fetchDoc();
});

/** Every operation of the document as [METHOD, path template, operation]. */
const operations = (): [string, string, Json][] =>
  Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([m, op]) => [m.toUpperCase(), path, op as Json] as [string, string, Json]),
  );
const operation = (method: string, path: string): Json => {
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (!op) throw new Error(`no operation ${method} ${path}`);
  return op;
};
const resolve = (ref: string): Json =>
  ref
    .replace(/^#\//, '')
    .split('/')
    .reduce((node: Json | undefined, key) => node?.[key], doc) as Json;
const withoutDescriptions = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(withoutDescriptions)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.entries(v)
            .filter(([k]) => k !== 'description')
            .map(([k, x]) => [k, withoutDescriptions(x)]),
        )
      : v;
const zodSchema = (s: z.ZodType) => {
  const { $schema: _, ...rest } = z.toJSONSchema(s, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as Json;
  return rest;
};
const statuses = (op: Json) =>
  Object.keys(op.responses)
    .map(Number)
    .sort((a, b) => a - b);

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document whose every $ref resolves', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.servers).toEqual([{ url: 'http://edge' }]);
    expect(Object.keys(doc.paths).every((p) => p.startsWith('/'))).toBe(true);
    const refs: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) k === '$ref' ? refs.push(x as string) : walk(x);
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(50);
    for (const r of new Set(refs)) expect(resolve(r), r).toBeTruthy();
    const ids = operations().map(([, , op]) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [method, path, op] of operations()) {
      expect(op.summary, `${method} ${path}`).toBeTruthy();
      // Path parameters are declared, and only those.
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect(
        (op.parameters ?? [])
          .filter((p: Json) => p.in === 'path')
          .map((p: Json) => p.name)
          .sort(),
        `${method} ${path}`,
      ).toEqual(inPath);
      for (const p of op.parameters ?? [])
        expect(p, `${method} ${path}`).toMatchObject({
          name: expect.any(String),
          in: expect.stringMatching(/^(path|query|header)$/),
          schema: expect.any(Object),
        });
      if (op.security)
        for (const s of op.security)
          for (const name of Object.keys(s)) expect(doc.components.securitySchemes[name]).toBeTruthy();
    }
  });

  it('documents exactly the routes the app serves (app.routes)', () => {
    const served = new Set(
      app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    );
    const documented = new Set(operations().map(([m, p]) => `${m} ${p}`));
    expect(
      [...served].filter((r) => !documented.has(r)),
      'routes without docs',
    ).toEqual([]);
    expect(
      [...documented].filter((r) => !served.has(r)),
      'docs without a route',
    ).toEqual([]);
    expect(served.size).toBeGreaterThanOrEqual(26);
  });

  it('takes its request bodies from the routes’ zod schemas', () => {
    const body = (method: string, path: string, type = 'application/json') =>
      resolve(operation(method, path).requestBody.content[type].schema.$ref);
    const cases: [string, string, z.ZodType][] = [
      ['POST', '/v2/models/{name}/infer', inferRequestSchema],
      ['POST', '/v2/models/{name}/versions/{version}/infer', inferRequestSchema],
      ['POST', '/v1/tasks', taskBodySchema],
      ['POST', '/v1/tasks/{task}/devices', enrollBody],
      ['POST', '/v1/tasks/{task}/evaluations', evaluationBody],
      ['PUT', '/v1/models/{name}/aliases/{alias}', aliasBody],
    ];
    for (const [method, path, schema] of cases)
      expect(withoutDescriptions(body(method, path)), `${method} ${path}`).toEqual(
        withoutDescriptions(zodSchema(schema)),
      );
    // Defaults and bounds the route applies are visible to readers.
    const task = body('POST', '/v1/tasks');
    expect(task.properties.alias.default).toBe('federated');
    expect(task.properties.devicesPerRound).toMatchObject({ type: 'integer', minimum: 3, maximum: 10_000 });
    expect(task.required).toEqual(
      expect.arrayContaining(['task', 'model', 'rounds', 'devicesPerRound', 'enrollmentToken']),
    );
    // Spec mode (spec + weights) or base mode (base + trainable): neither pair is required by the schema alone.
    for (const optional of ['stageSeconds', 'spec', 'weights', 'base', 'trainable'])
      expect(task.required).not.toContain(optional);
    expect(Object.keys(task.properties.base.properties)).toEqual(['model', 'version']);
    // Binary bodies are documented as bytes.
    expect(operation('PUT', '/v1/models/{name}/versions/{version}').requestBody.content).toHaveProperty(
      'application/octet-stream',
    );
    expect(operation('POST', '/v1/tasks/{task}/messages').requestBody.content).toHaveProperty(
      'application/octet-stream',
    );
    expect(operation('POST', '/v2/models/{name}/infer').requestBody.content).toHaveProperty('application/octet-stream');
  });

  it('answers every error as {error} with the 4xx statuses each route can give', () => {
    for (const [method, path, op] of operations()) {
      const errors = statuses(op).filter((s) => s >= 400);
      expect(errors, `${method} ${path}`).toContain(429);
      for (const s of errors) {
        const r = op.responses[String(s)];
        expect(r.content['application/json'].schema.$ref, `${method} ${path} ${s}`).toBe('#/components/schemas/Error');
        expect(r.description.length, `${method} ${path} ${s}`).toBeGreaterThan(10);
        expect(r.headers['X-Request-Id']).toBeTruthy();
        if (s === 429) expect(r.headers['Retry-After']).toBeTruthy();
        if (!(s < 500 || (path === '/v2/health/ready' && s === 503)))
          throw new Error(`${method} ${path} documents ${s}`);
      }
    }
    expect(resolve('#/components/schemas/Error')).toMatchObject({
      type: 'object',
      properties: { error: { type: 'string' } },
      required: ['error'],
    });
    const expected: [string, string, number[]][] = [
      ['POST', '/v2/models/{name}/infer', [400, 404, 408, 413, 415, 429]],
      ['GET', '/v2/models/{name}', [404, 429]],
      ['GET', '/v2/models/{name}/versions/{version}/onnx', [404, 429]],
      ['PUT', '/v1/models/{name}/versions/{version}', [400, 401, 403, 408, 409, 413, 415, 429]],
      ['PUT', '/v1/models/{name}/aliases/{alias}', [400, 401, 403, 404, 408, 413, 415, 429]],
      ['DELETE', '/v1/models/{name}/versions/{version}', [401, 403, 404, 409, 429]],
      ['POST', '/v1/tasks', [400, 401, 403, 408, 409, 413, 415, 422, 429]],
      ['POST', '/v1/tasks/{task}/devices', [400, 401, 403, 404, 408, 409, 413, 415, 429]],
      ['POST', '/v1/tasks/{task}/messages', [400, 403, 404, 408, 409, 413, 415, 422, 429]],
      ['GET', '/v1/tasks/{task}/rounds/{round}/unmask', [400, 401, 403, 404, 422, 425, 429]],
      ['POST', '/v1/tasks/{task}/evaluations', [400, 401, 403, 404, 408, 413, 415, 422, 429]],
    ];
    for (const [method, path, want] of expected)
      expect(
        statuses(operation(method, path)).filter((s) => s >= 400),
        `${method} ${path}`,
      ).toEqual(want);
    // Who may call what.
    expect(operation('PUT', '/v1/models/{name}/versions/{version}').security).toEqual([{ adminToken: [] }]);
    expect(operation('POST', '/v1/tasks/{task}/devices').security).toEqual([{ enrollmentToken: [] }]);
    expect(operation('GET', '/v1/tasks/{task}/rounds/{round}/broadcast').security).toEqual([{ deviceSignature: [] }]);
    expect(doc.components.securitySchemes.deviceSignature).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'Fedge-Device-Signature',
    });
  });

  it('lists the status of every refusal the routes really answer', async () => {
    const task = uniqueName('oa');
    const created = await SELF.fetch('http://edge/v1/tasks', {
      method: 'POST',
      headers: { ...ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify(taskBody(task)),
    });
    expect(created.status).toBe(201);
    R.taskCreated.parse(await created.json());
    const json = { 'Content-Type': 'application/json' };
    const digit = JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }],
    });
    const probes: [string, string, RequestInit, number][] = [
      ['POST', '/v2/models/mnist-mlp/infer', { headers: json, body: '{"inputs":' }, 400],
      [
        'POST',
        '/v2/models/mnist-mlp/infer',
        {
          headers: json,
          body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }),
        },
        400,
      ],
      ['POST', '/v2/models/no-such-model/infer', { headers: json, body: digit }, 404],
      ['POST', '/v2/models/mnist-mlp/versions/nope/infer', { headers: json, body: digit }, 404],
      ['POST', '/v2/models/mnist-mlp/infer', { headers: { 'Content-Type': 'text/plain' }, body: digit }, 415],
      ['GET', '/v2/models/no-such-model', {}, 404],
      ['GET', '/v2/models/mnist-mlp/versions/nope/ready', {}, 404],
      ['GET', '/v2/models/mnist-mlp/versions/nope/onnx', {}, 404],
      [
        'PUT',
        '/v1/models/oa/versions/1',
        { headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(4) },
        401,
      ],
      [
        'PUT',
        '/v1/models/oa/versions/1',
        {
          headers: { Authorization: 'Bearer wrong', 'Content-Type': 'application/octet-stream' },
          body: new Uint8Array(4),
        },
        403,
      ],
      ['PUT', '/v1/models/oa/versions/1', { headers: { ...ADMIN, ...json }, body: '{}' }, 415],
      [
        'PUT',
        '/v1/models/oa/versions/1',
        { headers: { ...ADMIN, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(4) },
        400,
      ],
      [
        'PUT',
        '/v1/models/mnist-mlp/aliases/stable',
        { headers: { ...ADMIN, ...json }, body: '{"version":"nope"}' },
        404,
      ],
      ['PUT', '/v1/models/mnist-mlp/aliases/stable', { headers: { ...ADMIN, ...json }, body: '{"version":1}' }, 400],
      ['DELETE', '/v1/models/mnist-mlp/versions/1', { headers: ADMIN }, 409],
      ['DELETE', '/v1/models/mnist-mlp/versions/nope', { headers: ADMIN }, 404],
      ['POST', '/v1/tasks', { headers: { ...ADMIN, ...json }, body: '{}' }, 400],
      [
        'POST',
        '/v1/tasks',
        {
          headers: { ...ADMIN, ...json },
          body: JSON.stringify(taskBody(uniqueName('oa'), { secagg: { neighbours: 2, threshold: 1 } })),
        },
        400,
      ],
      [
        'POST',
        '/v1/tasks',
        { headers: { ...ADMIN, ...json }, body: JSON.stringify(taskBody(task, { rounds: 3 })) },
        409,
      ],
      [
        'POST',
        '/v1/tasks',
        {
          headers: { ...ADMIN, ...json },
          body: JSON.stringify(
            taskBody(uniqueName('oa'), { devicesPerRound: 5, minDevices: 3, secagg: { neighbours: 4, threshold: 2 } }),
          ),
        },
        422,
      ],
      ['GET', '/v1/tasks/no-such-task', {}, 404],
      ['GET', '/v1/tasks/no-such-task/round', {}, 404],
      ['POST', `/v1/tasks/${task}/devices`, { headers: json, body: '{}' }, 401],
      [
        'POST',
        `/v1/tasks/${task}/devices`,
        {
          headers: { ...json, Authorization: 'Bearer not-the-token-at-all' },
          body: JSON.stringify({ device: 'd1', identityKey: btoa('x'.repeat(32)) }),
        },
        403,
      ],
      [
        'POST',
        `/v1/tasks/${task}/devices`,
        {
          headers: { ...json, Authorization: 'Bearer x' },
          body: JSON.stringify({ device: 'd1', identityKey: 'AAAA' }),
        },
        400,
      ],
      ['POST', '/v1/tasks/no-such-task/devices', { headers: { ...json, Authorization: 'Bearer x' }, body: '{}' }, 404],
      ['POST', `/v1/tasks/${task}/messages`, { headers: { 'Content-Type': 'text/plain' }, body: 'x' }, 415],
      [
        'POST',
        `/v1/tasks/${task}/messages`,
        { headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(0) },
        400,
      ],
      [
        'POST',
        `/v1/tasks/${task}/messages`,
        { headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(4 << 20) },
        413,
      ],
      ['GET', `/v1/tasks/${task}/rounds/0/broadcast?device=d1`, {}, 400],
      ['GET', `/v1/tasks/${task}/rounds/1/delivery?device=d1`, {}, 401],
      [
        'GET',
        `/v1/tasks/${task}/rounds/1/unmask?device=d1`,
        { headers: { 'Fedge-Device-Signature': btoa('s'.repeat(64)) } },
        403,
      ],
      [
        'POST',
        `/v1/tasks/${task}/evaluations`,
        { headers: { ...ADMIN, ...json }, body: '{"round":1,"accuracy":0.5}' },
        422,
      ],
      [
        'POST',
        `/v1/tasks/${task}/evaluations`,
        { headers: { ...ADMIN, ...json }, body: '{"round":7,"accuracy":0.5}' },
        404,
      ],
      ['POST', `/v1/tasks/${task}/close-stage`, {}, 401],
    ];
    const templates = operations().map(([m, p, op]) => ({
      m,
      re: new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`),
      op,
      p,
    }));
    for (const [method, url, init, status] of probes) {
      const res = await SELF.fetch(`http://edge${url}`, { method, ...init });
      const what = `${method} ${url}`;
      expect(res.status, what).toBe(status);
      expect(await res.json(), what).toEqual({ error: expect.any(String) });
      const pathname = url.split('?')[0]!;
      const t = templates.find((o) => o.m === method && o.re.test(pathname));
      expect(t, what).toBeTruthy();
      expect(statuses(t!.op), `${what} → ${status} is not documented for ${t!.p}`).toContain(status);
    }
  });

  it('describes what the routes really answer (response schemas parse real answers)', async () => {
    const get = async (path: string) => {
      const res = await SELF.fetch(`http://edge${path}`);
      expect(res.status, path).toBe(200);
      return res.json();
    };
    R.serverMetadata.parse(await get('/v2'));
    R.live.parse(await get('/v2/health/live'));
    R.ready.parse(await get('/v2/health/ready'));
    R.modelList.parse(await get('/v2/models'));
    R.modelMetadata.parse(await get('/v2/models/mnist-mlp'));
    R.modelReady.parse(await get('/v2/models/mnist-mlp/versions/1/ready'));
    const infer = await SELF.fetch('http://edge/v2/models/mnist-mlp/infer', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        id: 'x',
        inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }],
      }),
    });
    expect(infer.headers.get('Fedge-Execution-Provider')).toBe('wasm');
    R.inferResponse.parse(await infer.json());
    const task = uniqueName('oa');
    expect(
      (
        await SELF.fetch('http://edge/v1/tasks', {
          method: 'POST',
          headers: { ...ADMIN, 'Content-Type': 'application/json' },
          body: JSON.stringify(taskBody(task)),
        })
      ).status,
    ).toBe(201);
    R.taskStatus.parse(await get(`/v1/tasks/${task}`));
    R.roundInfo.parse(await get(`/v1/tasks/${task}/round`));
    const alias = await SELF.fetch('http://edge/v1/models/mnist-mlp/aliases/openapi-test', {
      method: 'PUT',
      headers: { ...ADMIN, 'Content-Type': 'application/json' },
      body: '{"version":"1"}',
    });
    R.aliasResult.parse(await alias.json());
    // The documented shapes match the schemas the document carries.
    expect(resolve('#/components/schemas/ModelMetadata').required).toEqual(
      expect.arrayContaining(['name', 'versions', 'platform', 'inputs', 'outputs', 'parameters']),
    );
  });
});
