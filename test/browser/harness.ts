/**
 * Real-browser tests: Debian's Chromium driven by playwright-core, pages bundled with esbuild (as an app would
 * bundle the SDK) and served from 127.0.0.1. Each launch gets a fresh temporary profile; everything started here is
 * stopped by the returned close().
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = process.env.FEDGE_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(opts: { webgpu?: boolean } = {}): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`browser tests need Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set FEDGE_CHROMIUM`);
  const profile = mkdtempSync(join(tmpdir(), 'fedge-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...(opts.webgpu ? ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader'] : [])],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Bundles `entry` for the browser and serves it as the script of an empty page on 127.0.0.1. */
export async function servePage(entry: string, extra: Record<string, { type: string; body: Buffer | string }> = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' });
  const files: Record<string, { type: string; body: Buffer | string }> = {
    '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>fedge test</title><script type="module" src="/page.js"></script>' },
    '/page.js': { type: 'text/javascript', body: Buffer.from(out.outputFiles[0]!.contents) },
    ...extra,
  };
  const server: Server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file.type }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
