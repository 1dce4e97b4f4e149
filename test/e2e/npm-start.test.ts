/**
 * `npm start`'s server (dev/worker-server.ts): the web app and the API from one port, the API reached without the
 * asset router, unknown paths answered by the Worker's JSON 404, and a reload (what a source change triggers) keeping
 * the port and the stored state. The state is in wrangler dev's layout (`<dir>/v3`).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type WorkerServer, serveWorker } from '../../dev/worker-server.ts';
import { matmulModel } from '../fixtures/onnx-models.ts';
import { freePort } from '../../dev/harness/local-server.ts';

const state = mkdtempSync(join(tmpdir(), 'fedge-start-'));
const ADMIN = { Authorization: 'Bearer dev-admin-token' }; // the local default in .dev.vars
let server: WorkerServer | undefined;

afterAll(async () => {
  await server?.dispose();
  rmSync(state, { recursive: true, force: true });
});

describe('npm start', () => {
  it('serves the web app and the API on one port, and a reload keeps the port and what was stored', async () => {
    server = await serveWorker({ port: await freePort(), persistTo: state, assets: true });
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<script');
    // A path that is neither a file nor a route: the Worker's own JSON 404, not the asset router's page.
    const missing = await fetch(`${server.url}/no-such-page`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no route for GET /no-such-page' });

    const up = await fetch(`${server.url}/v1/models/start-matmul/versions/1`, {
      method: 'PUT',
      headers: { ...ADMIN, 'Content-Type': 'application/octet-stream' },
      body: matmulModel(),
    });
    expect(up.status).toBe(201);
    expect(existsSync(join(state, 'v3'))).toBe(true);

    await server.reload();
    const res = await fetch(`${server.url}/v2/models/start-matmul/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([9, 12]);
  });
});
