/**
 * Fedge as an npm user gets it: `npm pack` (the build runs in `prepack`), the tarball installed offline into
 * throwaway apps, then (a) a Node program on Node 20 and Node 22 calls the real local edge with EdgeClient and uses
 * RdpAccountant, (b) a page bundled by esbuild and by Vite runs EdgeClient and LocalModel in Chromium, (c) a strict
 * TypeScript consumer type-checks against the shipped declarations, (d) `npx fedge --help` runs. Plus the figures
 * the package promises: node_modules without TensorFlow.js and onnxruntime-web ≤ 5 MB, an EdgeClient-only browser
 * bundle ≤ 13 KiB; (e) devices on Node 20 and Node 22: LocalModel, the bundled language model's greedy text, and head-task Participants through a round; (f)
 * the example app (examples/web-app) built against the tarball, on its own origin, through a round in Chromium.
 * Everything started here (servers, page servers, Chromium) is stopped and the temp dir removed in afterAll, also
 * when a step fails.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';
import { launchChromium } from '../../dev/harness/chromium.ts';
import { ROOT, installApp, packFedge, treeBytes } from './install.ts';
import { serveFolder } from './static-server.ts';
import { loadMnist } from '../../models/data/mnist.ts';

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, 'fixtures');
const ARTIFACTS = join(import.meta.dirname, '../../test-results');
const tmp = mkdtempSync(join(tmpdir(), 'fedge-package-'));
const nodeApp = join(tmp, 'node-app'); // fedge alone: no TensorFlow.js, no onnxruntime-web
const webApp = join(tmp, 'web-app'); // fedge + onnxruntime-web (LocalModel), still no TensorFlow.js
const deviceApp = join(tmp, 'device-app'); // fedge + onnxruntime-web + TensorFlow.js: LocalModel, Trainer, Participant
let server: LocalServer;
let tarball: string;
/** The example app's origin (its dist/ is built by test f) and an edge that lists that origin by name. */
let example: Promise<{ site: { url: string }; named: LocalServer }>;
const closers: (() => Promise<unknown>)[] = [];

/** The system's Node 20: the first `node` on PATH outside any node_modules (npm scripts put ours, Node 22, first). */
async function systemNode(): Promise<{ path: string; version: string } | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || dir.includes('node_modules')) continue;
    const path = join(dir, 'node');
    try {
      accessSync(path, constants.X_OK);
    } catch {
      continue;
    }
    return { path, version: (await run(path, ['-p', 'process.versions.node'])).stdout.trim() };
  }
  return undefined;
}

beforeAll(async () => {
  const started = startLocalServer({ persistTo: join(tmp, 'state') });
  started.then((s) => closers.push(() => s.stop())).catch(() => undefined);
  // The example's static server first, so its origin is known; its edge starts while the package is packed.
  example = serveFolder(join(deviceApp, 'dist'), join(deviceApp, 'dist/ort')).then(async (site) => {
    closers.push(site.close);
    const named = await startLocalServer({
      persistTo: join(tmp, 'state-named'),
      vars: { FEDGE_CORS_ORIGINS: new URL(site.url).origin },
    });
    closers.push(() => named.stop());
    return { site, named };
  });
  example.catch(() => undefined);
  tarball = await packFedge(tmp);
  await Promise.all([
    installApp(nodeApp, tarball),
    installApp(webApp, tarball, ['onnxruntime-web']),
    installApp(deviceApp, tarball, ['onnxruntime-web', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']),
  ]);
  server = await started;
});

afterAll(async () => {
  // The example's edge may still be starting: wait for it, so that it is stopped too.
  await example?.catch(() => undefined);
  await Promise.allSettled(closers.map((c) => c()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package, installed into an app', () => {
  it('(a) a Node program imports fedge/client and fedge/federated and calls the local edge, on Node 22 and on Node 20', async () => {
    cpSync(join(FIXTURES, 'app.mjs'), join(nodeApp, 'app.mjs'));
    const node20 = await systemNode();
    if (!node20)
      throw new Error(
        "no Node outside node_modules on PATH: the consumer test runs app.mjs on the system Node 20 too (install Node 20, e.g. Debian's nodejs)",
      );
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
    for (const node of [process.execPath, node20.path]) {
      const { stdout } = await run(node, ['app.mjs'], { cwd: nodeApp, env: { ...process.env, FEDGE_URL: server.url } });
      const out = JSON.parse(stdout);
      expect(out).toMatchObject({
        ready: true,
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 784] }],
        trainerNeeds: '@tensorflow/tfjs',
        localModelNeeds: 'onnxruntime-web',
      });
      expect(out.probabilities).toHaveLength(10);
      expect(out.probabilities.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 4);
      expect(out.epsilon).toBeGreaterThan(0);
    }
    expect(node20.version.split('.')[0]).toBe('20');
  });

  it("(e) on Node 22 and on Node 20, LocalModel runs the edge's model on the device (auto: the second load from the process's cache), generates the edge's greedy text with the bundled language model, and three head-task Participants complete a round that publishes", async () => {
    const node20 = await systemNode();
    if (!node20) throw new Error('no Node outside node_modules on PATH (see test a)');
    cpSync(join(FIXTURES, 'devices.mjs'), join(deviceApp, 'devices.mjs'));
    // 3 × 100 digits the default model never trained on (it was trained on the first 2,000).
    const { train } = loadMnist();
    writeFileSync(join(deviceApp, 'digits.f32'), train.x.slice(2000 * 784, 2300 * 784));
    writeFileSync(join(deviceApp, 'labels.i32'), train.y.slice(2000, 2300));
    for (const [label, node] of [
      ['node22', process.execPath],
      ['node20', node20.path],
    ] as const) {
      const task = `consumer-${label}`;
      const created = await fetch(`${server.url}/v1/tasks`, {
        method: 'POST',
        headers: { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' },
        body: JSON.stringify({
          task,
          model: task,
          base: { model: 'mnist-mlp', version: '1' },
          trainable: 'head',
          rounds: 1,
          devicesPerRound: 3,
          minDevices: 3,
          secagg: { neighbours: 2, threshold: 2 },
          stageSeconds: 600,
          update: { clip: 1, maxExamples: 1000 },
          training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: 'sgd' },
          privacy: { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5, epsilon: 10 },
          enrollmentToken: 'token-0123456789abcdef',
        }),
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const { stdout } = await run(node, ['devices.mjs'], {
        cwd: deviceApp,
        env: { ...process.env, FEDGE_URL: server.url, TASK: task, TOKEN: 'token-0123456789abcdef' },
        maxBuffer: 16 << 20,
      });
      const out = JSON.parse(stdout) as {
        node: string;
        first: string;
        second: string;
        fromCache: boolean;
        edge: number[];
        local: number[];
        outcomes: { status: string; epsilon: number }[];
        deviceText: string;
        edgeText: string;
      };
      expect(out.node.split('.')[0], label).toBe(label.slice(4));
      expect({ first: out.first, second: out.second, fromCache: out.fromCache }, label).toEqual({
        first: 'edge',
        second: 'wasm',
        fromCache: true,
      });
      out.local.forEach((p, i) => expect(Math.abs(p - out.edge[i]!), label).toBeLessThan(1e-4));
      expect(out.edgeText.length, label).toBeGreaterThan(0);
      expect(out.deviceText, label).toBe(out.edgeText);
      expect(
        out.outcomes.map((o) => o.status),
        label,
      ).toEqual(['unmasked', 'unmasked', 'unmasked']);
      for (const o of out.outcomes) expect(o.epsilon, label).toBeGreaterThan(0);
      const published = (await (await fetch(`${server.url}/v2/models/${task}`)).json()) as { versions: string[] };
      expect(published.versions, label).toHaveLength(1);
    }
  });

  it('(f) the example app (examples/web-app), built by Vite against the tarball and served from its own origin: EdgeClient, LocalModel and three Participants in Chromium through a round that publishes — with the edge listing its origin, and with `*`', async () => {
    for (const f of ['index.html', 'vite.config.js', 'src'])
      cpSync(join(ROOT, 'examples/web-app', f), join(deviceApp, f), { recursive: true });
    await run(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build'], { cwd: deviceApp });
    const { site, named } = await example;
    const other = await serveFolder(join(deviceApp, 'dist'), join(deviceApp, 'dist/ort'));
    closers.push(other.close);
    const browser = await launchChromium();
    closers.push(() => browser.close());
    const { train } = loadMnist();
    type Page = Awaited<ReturnType<typeof browser.context.newPage>>;
    const text = (tab: Page, id: string) =>
      tab.evaluate(
        (i) =>
          (
            globalThis as unknown as { document: { getElementById(i: string): { textContent: string } } }
          ).document.getElementById(i).textContent,
        id,
      );

    for (const [label, edge] of [
      ['named origin', named],
      ['wildcard', server],
    ] as const) {
      const task = `example-${label === 'wildcard' ? 'any' : 'named'}`;
      const created = await fetch(`${edge.url}/v1/tasks`, {
        method: 'POST',
        headers: { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' },
        body: JSON.stringify({
          task,
          model: task,
          base: { model: 'mnist-mlp', version: '1' },
          rounds: 1,
          devicesPerRound: 3,
          minDevices: 3,
          secagg: { neighbours: 2, threshold: 2 },
          stageSeconds: 600,
          training: { epochs: 1, batchSize: 32, learningRate: 0.1, optimizer: 'sgd' },
          privacy: { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5, epsilon: 10 },
          enrollmentToken: 'token-0123456789abcdef',
        }),
      });
      expect(created.status, `${label}: ${await created.clone().text()}`).toBe(201);
      const tabs = await Promise.all(
        [0, 1, 2].map(async (k) => {
          const tab = await browser.context.newPage();
          await tab.goto(
            `${site.url}?edge=${encodeURIComponent(edge.url)}&task=${task}&token=token-0123456789abcdef&device=${label.replace(' ', '-')}-${k}`,
          );
          await tab.evaluate(
            () => (globalThis as unknown as { fedgeExample: { ready: Promise<void> } }).fedgeExample.ready,
          );
          return tab;
        }),
      );
      expect(await text(tabs[0]!, 'edge-status'), label).toMatch(
        /served by the edge and runs on this device too \((wasm|webgpu)\)/,
      );
      const outcomes = await Promise.all(
        tabs.map((tab, k) =>
          tab.evaluate(
            async ([x, y]) => {
              const app = (
                globalThis as unknown as {
                  fedgeExample: {
                    addExamples(x: number[], y: number[]): number;
                    join(): Promise<{ status: string; epsilon?: number } | undefined>;
                  };
                }
              ).fedgeExample;
              app.addExamples(x, y);
              return app.join();
            },
            [
              Array.from(train.x.subarray((2000 + 100 * k) * 784, (2100 + 100 * k) * 784)),
              Array.from(train.y.subarray(2000 + 100 * k, 2100 + 100 * k)),
            ] as const,
          ),
        ),
      );
      expect(
        outcomes.map((o) => o?.status),
        `${label}: ${await text(tabs[0]!, 'round')}`,
      ).toEqual(['unmasked', 'unmasked', 'unmasked']);
      expect(await text(tabs[0]!, 'round'), label).toMatch(new RegExp(`the edge now serves ${task} version r1`));
      expect(await text(tabs[0]!, 'budget'), label).toMatch(
        /Privacy spent on task .*: ε = \d+\.\d\d of this device's budget of 10/,
      );
      expect(
        ((await (await fetch(`${edge.url}/v2/models/${task}`)).json()) as { versions: string[] }).versions,
        label,
      ).toEqual(['r1']);
      if (label === 'named origin') {
        // What a person sees after a round, kept for review: desktop and phone widths.
        mkdirSync(ARTIFACTS, { recursive: true });
        await tabs[0]!.screenshot({ path: join(ARTIFACTS, 'example-app-desktop.png'), fullPage: true });
        await tabs[0]!.setViewportSize({ width: 390, height: 844 });
        await tabs[0]!.screenshot({ path: join(ARTIFACTS, 'example-app-phone.png'), fullPage: true });
        expect(
          await tabs[0]!.evaluate(() => {
            const g = globalThis as unknown as {
              document: { documentElement: { scrollWidth: number } };
              innerWidth: number;
            };
            return g.document.documentElement.scrollWidth <= g.innerWidth;
          }),
          'the example app scrolls sideways at 390 px',
        ).toBe(true);
      }
      await Promise.all(tabs.map((t) => t.close()));
    }

    // A page on an origin the edge does not list: the SDK says the request may have been blocked by CORS, and where.
    const blocked = await browser.context.newPage();
    await blocked.goto(`${other.url}?edge=${encodeURIComponent(named.url)}`);
    await blocked.evaluate(
      () => (globalThis as unknown as { fedgeExample: { ready: Promise<void> } }).fedgeExample.ready,
    );
    expect(await text(blocked, 'edge-status')).toMatch(
      new RegExp(
        `EdgeError: no response from ${named.url.replace(/[.]/g, '\\.')}/v2/models/mnist-mlp .*blocked — by CORS \\(the edge's FEDGE_CORS_ORIGINS must list this page's origin\\)`,
      ),
    );
  }, 300_000);

  it('(b) a page bundled by esbuild and by Vite runs EdgeClient and LocalModel (WASM) in Chromium', async () => {
    const web = join(webApp, 'web');
    cpSync(join(FIXTURES, 'web'), web, { recursive: true });
    await build({
      entryPoints: [join(web, 'main.js')],
      outdir: join(web, 'dist-esbuild'),
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      logLevel: 'silent',
    });
    cpSync(join(web, 'index.html'), join(web, 'dist-esbuild/index.html'));
    await run(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build'], { cwd: web });
    const ortDist = join(webApp, 'node_modules/onnxruntime-web/dist');
    const browser = await launchChromium();
    closers.push(() => browser.close());
    for (const out of ['dist-esbuild', 'dist-vite']) {
      const site = await serveFolder(join(web, out), ortDist);
      closers.push(site.close);
      const tab = await browser.context.newPage();
      await tab.goto(`${site.url}?edge=${encodeURIComponent(server.url)}`);
      await tab.waitForFunction(
        () => (globalThis as unknown as { document: { title: string } }).document.title === 'done',
        undefined,
        { timeout: 60_000 },
      );
      const result = await tab.evaluate(
        () =>
          (
            globalThis as unknown as {
              result: { ok: boolean; error?: string; ranOn?: string; edge: number[]; local: number[] };
            }
          ).result,
      );
      expect(result, out).toMatchObject({ ok: true, ranOn: 'wasm' });
      result.local.forEach((p, i) => expect(Math.abs(p - result.edge[i]!), out).toBeLessThan(1e-4));
      await tab.close();
    }
  });

  it('(c) a strict TypeScript consumer (exactOptionalPropertyTypes, skipLibCheck false) type-checks against the shipped .d.ts', async () => {
    // Kept as .txt in the repository: it imports 'fedge/client' as an app does, which the repository's own typecheck
    // (tsconfig.json includes test/) cannot resolve before a build.
    cpSync(join(FIXTURES, 'strict-consumer.ts.txt'), join(webApp, 'consumer.ts'));
    cpSync(join(FIXTURES, 'tsconfig.consumer.json'), join(webApp, 'tsconfig.consumer.json'));
    const tsc = run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.consumer.json'], {
      cwd: webApp,
    });
    await expect(tsc.catch((e: { stdout: string }) => Promise.reject(new Error(e.stdout)))).resolves.toBeDefined();
  });

  it('(d) `npx fedge --help` runs the installed CLI (without onnxruntime-web)', async () => {
    const { stdout } = await run('npx', ['--no-install', 'fedge', '--help'], { cwd: nodeApp });
    expect(stdout).toContain('quantize');
  });

  it('an app with Fedge but without TensorFlow.js and onnxruntime-web: node_modules ≤ 5 MB, EdgeClient-only bundle ≤ 13 KiB', async () => {
    const bytes = await treeBytes(join(nodeApp, 'node_modules'));
    const bundle = async (contents: string) => {
      const out = await build({
        stdin: { contents, resolveDir: nodeApp, loader: 'js' },
        bundle: true,
        minify: true,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        write: false,
        logLevel: 'silent',
      });
      return out.outputFiles[0]!.contents.byteLength;
    };
    const edgeOnly = await bundle(`export { EdgeClient } from 'fedge/client';`);
    // Everything fedge/client exports still bundles without the optional packages installed (they load on use).
    const whole = await bundle(`export * from 'fedge/client'; export * from 'fedge/federated';`);
    console.log(
      `package: node_modules ${(bytes / 1e6).toFixed(1)} MB without tfjs/onnxruntime-web; EdgeClient-only bundle ${(edgeOnly / 1024).toFixed(1)} KiB; all of fedge/client + fedge/federated ${(whole / 1024).toFixed(0)} KiB`,
    );
    // 20.9 MB while ONNX went through onnx-proto (protobufjs 6); fedge (1.6 MB) and tweetnacl now (issue 29 point 8).
    expect(bytes).toBeLessThanOrEqual(5e6);
    // 8.4 KiB before BYTES tensors and the shared binary framing (federated/oip) came in: ~2 KiB of them; the shared
    // byte helpers (federated/bytes.ts: framing with its argument checks) ~1 KiB more — 12.3 KiB on 2026-12-07;
    // generate/generateStream and their SSE reader ~1 KiB, paid back in part by shared request helpers — 12.9 KiB.
    expect(edgeOnly).toBeLessThanOrEqual(13 * 1024);
  });
});
