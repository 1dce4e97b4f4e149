/**
 * `npm start`: the Worker on workerd through wrangler dev, on 127.0.0.1, with local R2/SQLite state in .wrangler/state,
 * and one line saying where the API and the web app are once the default model is loaded.
 *   npm start                      port 8787
 *   npm start -- --port 8790       or   PORT=8790 npm start
 * Wrangler's own output (build, warnings, errors) passes through. It would also try to fetch the `Request.cf`
 * object from Cloudflare on every start and warn when it cannot (offline, or here, where only package registries are
 * reachable); CLOUDFLARE_CF_FETCH_ENABLED=false gives the Worker wrangler's placeholder `cf` without asking.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { port: { type: 'string' } }, allowPositionals: false });
const port = Number(values.port ?? process.env.PORT ?? 8787);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`npm start: the port must be a number from 1 to 65535, got ${JSON.stringify(values.port ?? process.env.PORT)}`);
  process.exit(2);
}
const url = `http://127.0.0.1:${port}`;
const wrangler = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
const child = spawn(process.execPath, [wrangler, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', '.wrangler/state', '--log-level', 'warn'], {
  cwd: root, stdio: 'inherit', env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
});
// Ctrl-C reaches the whole foreground group; a SIGTERM sent to this process alone is passed on.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

const started = Date.now();
for (;;) {
  if (child.exitCode !== null) break;
  try {
    const res = await fetch(`${url}/v2/health/ready`, { signal: AbortSignal.timeout(5000) });
    if (res.ok) {
      const { default_model } = (await res.json()) as { default_model: string };
      console.log(`Fedge is ready in ${((Date.now() - started) / 1000).toFixed(1)} s — API and web app at ${url}/ (default model ${default_model}; local admin token in .dev.vars)`);
      break;
    }
  } catch {
    /* not listening yet */
  }
  await new Promise((r) => setTimeout(r, 250));
}
