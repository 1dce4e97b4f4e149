/**
 * A page for a real browser (chromium.ts) to open: a script bundled with esbuild, as an app would bundle the SDK, served
 * as the script of an empty page on 127.0.0.1 (a free port), with any extra files beside it. close() stops the server.
 */
import { createServer, type Server } from 'node:http';
import { build } from 'esbuild';

/** Bundles `entry` for the browser and serves it as the script of an empty page on 127.0.0.1. */
export async function servePage(
  entry: string,
  extra: Record<string, { type: string; body: Buffer | string }> = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const files: Record<string, { type: string; body: Buffer | string }> = {
    '/': {
      type: 'text/html',
      body: '<!doctype html><meta charset="utf-8"><title>fedge test</title><script type="module" src="/page.js"></script>',
    },
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
