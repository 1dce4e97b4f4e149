/**
 * `npm start`: the Worker and the web app on workerd (dev/worker-server.ts: the deployable bundle through Miniflare,
 * no wrangler dev proxy), on 127.0.0.1, with local R2/SQLite state in .wrangler/state (wrangler dev's layout, so
 * `wrangler dev` and `wrangler r2 object … --local` see the same data), and one line saying where the API and the web
 * app are once the default model is loaded. A change to the code, the web app, the bundled models, wrangler.toml or
 * .dev.vars rebuilds and restarts the Worker on the same port with the same state (a build error keeps the last good
 * build running).
 *   npm start                       port 8787
 *   npm start -- --port 8790        or   PORT=8790 npm start
 *   npm start -- --persist-to DIR   state elsewhere (the tests use a fresh folder)
 *   npm start -- --no-watch         no reload
 *   npm start -- --var NAME:value   a variable over wrangler.toml's and .dev.vars' (repeatable)
 */
import { watch } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { serveWorker } from './worker-server.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'persist-to': { type: 'string' },
    'no-watch': { type: 'boolean' },
    var: { type: 'string', multiple: true },
  },
  allowPositionals: false,
});
const port = Number(values.port ?? process.env.PORT ?? 8787);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(
    `npm start: the port must be a number from 1 to 65535, got ${JSON.stringify(values.port ?? process.env.PORT)}`,
  );
  process.exit(2);
}

const vars: Record<string, string> = {};
for (const v of values.var ?? []) {
  const at = v.indexOf(':');
  if (at < 1) {
    console.error(`npm start: --var takes NAME:value, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  vars[v.slice(0, at)] = v.slice(at + 1);
}

const started = Date.now();
const server = await serveWorker({
  port,
  persistTo: values['persist-to'] ?? join(root, '.wrangler/state'),
  assets: true,
  vars,
}).catch((e: Error & { stderr?: string }) => {
  console.error(`npm start: the Worker could not be built or started:\n${e.stderr || e.message}`);
  process.exit(1);
});
const stop = async () => {
  await server.dispose().catch(() => undefined);
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

const url = `http://127.0.0.1:${port}`;
const res = await fetch(`${url}/v2/health/ready`);
const { default_model } = (await res.json()) as { default_model: string };
console.log(
  `Fedge is ready in ${((Date.now() - started) / 1000).toFixed(1)} s — API and web app at ${url}/ (default model ${default_model}; local admin token in .dev.vars)`,
);

if (!values['no-watch']) {
  // What the bundle is built from. web/dist is the build's output, never watched.
  const sources = ['functions', 'federated', 'client-sdk', 'web/src', 'models', 'wrangler.toml', '.dev.vars'];
  let timer: NodeJS.Timeout | undefined;
  let reloading: Promise<void> = Promise.resolve();
  const changed = (what: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(async () => {
        const t = Date.now();
        try {
          await server.reload();
          console.log(`${what} changed: rebuilt and restarted in ${((Date.now() - t) / 1000).toFixed(1)} s`);
        } catch (e) {
          console.error(
            `${what} changed, but the build failed (the last good build keeps running):\n${(e as { stderr?: string }).stderr || (e as Error).message}`,
          );
        }
      });
    }, 300);
  };
  for (const source of sources) {
    try {
      watch(join(root, source), { recursive: true }, (_event, file) =>
        changed(file ? relative(root, join(root, source, String(file))) : source),
      ).unref();
    } catch {
      /* absent (.dev.vars is optional) */
    }
  }
}
