/**
 * Starts the same local server `npm start` runs (wrangler dev on workerd) on a chosen port and state
 * directory, waits until it is ready, and stops it by its process group — never by name.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '../..');

export interface LocalServer {
  url: string;
  child: ChildProcess;
  /** ms from spawn to /v2/health/ready answering 200 */
  readyAfterMs: number;
  stop(): Promise<void>;
  log(): string;
}

type ServerOptions = { port: number; persistTo: string; vars?: Record<string, string>; timeoutMs?: number };

/** `npm start`'s server: wrangler dev on workerd. */
export function startLocalServer(opts: ServerOptions): Promise<LocalServer> {
  const wrangler = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
  const args = [wrangler, 'dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--persist-to', opts.persistTo, '--log-level', 'warn', '--inspector-port', '0'];
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push('--var', `${k}:${v}`);
  return spawnUntilReady(args, opts);
}

/** The deployable bundle on workerd through Miniflare, without wrangler dev's proxy (bench/bundle-server.ts). */
export function startBundleServer(opts: ServerOptions): Promise<LocalServer> {
  const args = [join(root, 'bench/bundle-server.ts'), String(opts.port), opts.persistTo];
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push(`${k}=${v}`);
  return spawnUntilReady(args, opts);
}

async function spawnUntilReady(args: string[], opts: ServerOptions): Promise<LocalServer> {
  const started = performance.now();
  // process.execPath: the Node running the tests (npm scripts put the project's Node 22 first on PATH).
  const child = spawn(process.execPath, args, { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${opts.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`local server exited early (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${url}/v2/health/ready`);
      if (res.status === 200) return { url, child, readyAfterMs: performance.now() - started, stop, log: () => output };
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`local server not ready within ${opts.timeoutMs ?? 90_000} ms:\n${output}`);
}
