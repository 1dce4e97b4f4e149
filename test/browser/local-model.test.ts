/**
 * LocalModel and EdgeClient in a real browser (Debian's Chromium through playwright-core) against the real local
 * edge (wrangler dev on workerd): the WebGPU path (SwiftShader's adapter, --enable-unsafe-webgpu) and the WASM
 * fallback give the edge's outputs; the model's bytes are cached by sha256 so a reload downloads nothing; 'auto'
 * answers from the edge until the bytes are on the device; bad inputs are typed errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { loadMnist } from '../../models/data/mnist.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';
import { launchChromium } from '../../dev/harness/chromium.ts';
import { identityModel } from '../fixtures/onnx-models.ts';
import { serveLocalModelPage } from '../../dev/harness/local-model-page-server.ts';
import { ORT_WASM_FILES } from '../../client-sdk/local/ort-loader.ts';

const state = mkdtempSync(join(tmpdir(), 'fedge-local-model-'));
let server: LocalServer;
let page: Awaited<ReturnType<typeof serveLocalModelPage>>;
let gpu: Awaited<ReturnType<typeof launchChromium>>;
let plain: Awaited<ReturnType<typeof launchChromium>>;

const { test } = loadMnist();
const N = 8;
const digits = Array.from(test.x.subarray(0, N * 784));

beforeAll(async () => {
  [server, page, gpu, plain] = await Promise.all([
    startLocalServer({ persistTo: state }),
    serveLocalModelPage(),
    launchChromium({ webgpu: true }),
    launchChromium(),
  ]);
});
afterAll(async () => {
  await Promise.all([gpu?.close(), plain?.close(), page?.close(), server?.stop()]);
  rmSync(state, { recursive: true, force: true });
});

type Api = Record<string, (...a: unknown[]) => Promise<any>>;
async function open(browser: typeof gpu): Promise<{
  tab: Page;
  onnxDownloads: () => number;
  wasmFetched: () => string[];
  call: (fn: string, ...args: unknown[]) => Promise<any>;
}> {
  const tab = await browser.context.newPage();
  let downloads = 0;
  const wasm: string[] = [];
  tab.on('request', (r) => {
    if (r.url().endsWith('/onnx')) downloads++;
    if (r.url().endsWith('.wasm')) wasm.push(r.url().slice(r.url().lastIndexOf('/') + 1));
  });
  await tab.goto(`${page.url}?edge=${encodeURIComponent(server.url)}`);
  await tab.waitForFunction(() => document.title === 'ready');
  const call = (fn: string, ...args: unknown[]) =>
    tab.evaluate(([f, a]) => (globalThis as unknown as { fedge: Api }).fedge[f as string]!(...(a as unknown[])), [
      fn,
      args,
    ] as const);
  return { tab, onnxDownloads: () => downloads, wasmFetched: () => [...new Set(wasm)], call };
}

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

describe('LocalModel in Chromium', () => {
  it('WebGPU where the browser has an adapter: same probabilities as the edge; a reload runs from the cache without downloading', async () => {
    const { tab, call, onnxDownloads, wasmFetched } = await open(gpu);
    const edge = await call('edge', 'mnist-mlp', digits, [N, 784]);
    expect(edge.ok).toBe(true);
    const loaded = await call('load', 'm', { model: 'mnist-mlp' });
    expect(loaded).toMatchObject({
      ok: true,
      provider: 'webgpu',
      version: edge.version,
      fromCache: false,
      inputNames: ['input'],
    });
    expect(onnxDownloads()).toBe(1);
    const local = await call('run', 'm', digits, [N, 784]);
    expect(local).toMatchObject({ ok: true, ranOn: 'webgpu', shape: [N, 10] });
    // ONNX Runtime's native WebGPU provider (the JSPI build), one binary, under the 25 MiB static-asset limit.
    expect(wasmFetched()).toEqual([ORT_WASM_FILES.webgpu]);
    expect(maxDiff(local.data, edge.data)).toBeLessThan(1e-4);
    await tab.reload();
    await tab.waitForFunction(() => document.title === 'ready');
    const again = await call('load', 'm', { model: 'mnist-mlp' });
    expect(again).toMatchObject({ ok: true, provider: 'webgpu', fromCache: true, sha256: loaded.sha256 });
    expect(onnxDownloads()).toBe(1); // the reload read the bytes from the Cache API
    expect(maxDiff((await call('run', 'm', digits, [N, 784])).data, edge.data)).toBeLessThan(1e-4);
    await tab.close();
  });

  it('falls back to WASM without a WebGPU adapter (and on request): same probabilities as the edge', async () => {
    const { tab, call, wasmFetched } = await open(plain);
    const edge = await call('edge', 'mnist-mlp', digits, [N, 784], false); // JSON tensors this time
    expect(await call('load', 'w', { model: 'mnist-mlp' })).toMatchObject({ ok: true, provider: 'wasm' });
    const local = await call('run', 'w', digits, [N, 784]);
    expect(local.ranOn).toBe('wasm');
    expect(wasmFetched()).toEqual([ORT_WASM_FILES.wasm]); // the plain build: no WebGPU code downloaded
    expect(maxDiff(local.data, edge.data)).toBeLessThan(1e-5);
    await tab.close();
    const onGpu = await open(gpu);
    expect(await onGpu.call('load', 'w', { model: 'mnist-cnn', providers: ['wasm'] })).toMatchObject({
      ok: true,
      provider: 'wasm',
    });
    const cnnEdge = await onGpu.call('edge', 'mnist-cnn', digits, [N, 28, 28, 1]);
    expect(cnnEdge.ok).toBe(true);
    expect(maxDiff((await onGpu.call('run', 'w', digits, [N, 28, 28, 1])).data, cnnEdge.data)).toBeLessThan(1e-5);
    await onGpu.tab.close();
  });

  it("mode 'auto' answers from the edge until the bytes are on the device, then runs locally", async () => {
    const browser = await launchChromium(); // a fresh profile: nothing cached
    try {
      const { call } = await open(browser);
      const first = await call('load', 'a', { model: 'spam-bow', mode: 'auto' });
      expect(first).toMatchObject({ ok: true, provider: 'edge', fromCache: false });
      await call('prefetched', 'a');
      const second = await call('load', 'b', { model: 'spam-bow', mode: 'auto' });
      expect(second).toMatchObject({ ok: true, provider: 'wasm', fromCache: true });
    } finally {
      await browser.close();
    }
  });

  it('bad input is a typed error with a message; an unknown model is an EdgeError with the server’s words', async () => {
    const { tab, call } = await open(plain);
    await call('load', 'm', { model: 'mnist-mlp', providers: ['wasm'] });
    expect(await call('run', 'm', digits.slice(0, 700), [1, 784])).toMatchObject({
      ok: false,
      name: 'TensorError',
      message: expect.stringMatching(/needs 784 elements, data has 700/),
    });
    expect(await call('run', 'm', digits.slice(0, 784), [1, 784], 'pixels')).toMatchObject({
      ok: false,
      name: 'LocalModelError',
      message: expect.stringMatching(/no input 'pixels'/),
    });
    expect(await call('run', 'm', digits.slice(0, 780), [1, 780])).toMatchObject({
      ok: false,
      name: 'LocalModelError',
      message: expect.stringMatching(/refused the inputs/),
    });
    expect(await call('load', 'x', { model: 'no-such-model' })).toMatchObject({
      ok: false,
      name: 'EdgeError',
      message: expect.stringMatching(/no-such-model/),
    });
    await tab.close();
  });

  it('hands back FP16 as raw half bits in a Uint16Array and strings as strings, exactly as the edge does', async () => {
    const { tab, call } = await open(plain);
    const halves = [0x3800, 0xc000, 0x6400, 0x7bff]; // 0.5, -2, 1024, 65504
    const fp16 = await call('identity', Array.from(identityModel('FP16', ['n'])), 'FP16', halves, [4]);
    expect(fp16).toMatchObject({ ok: true, datatype: 'FP16', array: 'Uint16Array', data: halves });
    const text = await call('identity', Array.from(identityModel('BYTES', ['n'])), 'BYTES', ['ünï ✓', ''], [2]);
    expect(text).toMatchObject({ ok: true, datatype: 'BYTES', array: 'Array', data: ['ünï ✓', ''] });
    await tab.close();
  });
});
