/**
 * Launches a local server for tests, benchmarks and simulations: the same one `npm start` runs (dev/start.ts: the
 * Worker bundle and the web app on workerd), `wrangler dev`, or the bare bundle on workerd (bundle-server.ts), on a
 * free port (or a chosen one) and a state directory; waits until it is ready, and stops it by its process group —
 * never by name. Every server started here is also stopped when the process exits, and listed for the test run's
 * teardown (server-registry.ts, test/global-setup.ts), so a test that fails or times out mid-start leaves nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { forgetGroup, recordGroup } from './server-registry.ts';
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

type ServerOptions = { port?: number; persistTo: string; vars?: Record<string, string>; timeoutMs?: number };

/** A port nothing listens on now (the OS picks it), so two checkouts or test files never collide. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Sends `signal` to a process group; false when no process of it is left. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Process groups still running; killed synchronously when this process exits, however it exits. */
const running = new Set<number>();
process.once('exit', () => {
  for (const pgid of running) signalGroup(pgid, 'SIGKILL');
});

/** `npm start`'s server (dev/start.ts: the bundle on workerd with the web app, no reload). */
export async function startLocalServer(opts: ServerOptions): Promise<LocalServer> {
  const port = opts.port ?? (await freePort());
  const args = [join(root, 'dev/start.ts'), '--port', String(port), '--persist-to', opts.persistTo, '--no-watch'];
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push('--var', `${k}:${v}`);
  return spawnUntilReady(args, port, opts);
}

/** `wrangler dev` (what `npm start` ran before it served workerd directly): for the benchmark's comparison. */
export async function startWranglerDev(opts: ServerOptions): Promise<LocalServer> {
  const wrangler = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
  const port = opts.port ?? (await freePort());
  const args = [
    wrangler,
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--persist-to',
    opts.persistTo,
    '--log-level',
    'warn',
    '--inspector-port',
    '0',
  ];
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push('--var', `${k}:${v}`);
  return spawnUntilReady(args, port, opts);
}

/** The deployable bundle on workerd through Miniflare, without wrangler dev's proxy (bundle-server.ts). */
export async function startBundleServer(opts: ServerOptions): Promise<LocalServer> {
  const port = opts.port ?? (await freePort());
  const args = [join(root, 'dev/harness/bundle-server.ts'), String(port), opts.persistTo];
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push(`${k}=${v}`);
  return spawnUntilReady(args, port, opts);
}

async function spawnUntilReady(args: string[], port: number, opts: ServerOptions): Promise<LocalServer> {
  const started = performance.now();
  // process.execPath: the Node running the tests (npm scripts put the project's Node 22 first on PATH).
  const child = spawn(process.execPath, args, {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
  });
  const pgid = child.pid!;
  running.add(pgid);
  recordGroup(pgid);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!running.has(pgid)) return;
    const exited =
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise((r) => child.once('exit', r));
    signalGroup(pgid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    // wrangler's workerd is in the same group: give it a moment to finish, then make sure nothing is left.
    for (let i = 0; i < 30 && signalGroup(pgid, 0); i++) await new Promise((r) => setTimeout(r, 100));
    signalGroup(pgid, 'SIGKILL');
    running.delete(pgid);
    forgetGroup(pgid);
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
