/**
 * The V8 heap of the local server's Worker isolate — the isolate that runs the Worker and its Durable Objects —
 * read through workerd's inspector (Chrome DevTools Protocol, `Runtime.getHeapUsage`): the JS heap in use plus the
 * ArrayBuffer backing stores (typed arrays, WASM memory). That is the memory Cloudflare's per-isolate limit counts,
 * without the runtime's own native memory (SQLite, sockets) that a process RSS adds. workerd listens for the
 * inspector on a random loopback port (wrangler dev passes `--inspector-addr=127.0.0.1:0`): it is found from the
 * workerd process's own listening sockets (/proc), by PID, never by name. The scale simulation and the inference
 * benchmarks read it; the CPU profile benchmark drives the same session's Profiler.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

export interface HeapUsage {
  /** JS heap in use, bytes. */
  usedSize: number;
  /** ArrayBuffer backing stores (typed arrays, WASM memories), bytes. */
  backingStorageSize: number;
}

/** Loopback TCP ports `pid` listens on (Linux /proc). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  return readFileSync(`/proc/${pid}/net/tcp`, 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] === '0A' && inodes.has(f[9]!))
    .map((f) => parseInt(f[1]!.split(':')[1]!, 16));
}

/** Inspector WebSocket URLs of the user Workers' isolates in workerd process `pid`, by Worker name. */
export async function workerInspectorUrls(pid: number): Promise<Map<string, string>> {
  for (const port of listeningPorts(pid)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) continue;
      const targets = (await res.json()) as { id: string; webSocketDebuggerUrl: string }[];
      const users = targets.filter((t) => t.id.startsWith('core:user:'));
      if (users.length) return new Map(users.map((t) => [t.id.slice('core:user:'.length), t.webSocketDebuggerUrl]));
    } catch {
      /* not the inspector */
    }
  }
  return new Map();
}

/**
 * The inspector session lives in a worker thread with a clean global scope: wrangler's modules (imported by the
 * local server helper) replace this thread's global WebSocket with one whose handshake workerd's inspector never
 * answers. Node's own WebSocket, in the worker, connects.
 */
const SESSION = `
const { parentPort, workerData } = require('node:worker_threads');
const ws = new WebSocket(workerData);
ws.addEventListener('open', () => parentPort.postMessage({ open: true }));
ws.addEventListener('error', () => parentPort.postMessage({ error: 'cannot open the inspector at ' + workerData }));
ws.addEventListener('message', (e) => parentPort.postMessage(JSON.parse(String(e.data))));
parentPort.on('message', (m) => (m === 'close' ? (ws.close(), parentPort.close()) : ws.send(JSON.stringify(m))));
`;

/** One inspector session: heap usage on demand, and any other DevTools Protocol method (`send`, e.g. the Profiler). */
export async function openHeapProbe(url: string): Promise<{
  usage(): Promise<HeapUsage>;
  live(): Promise<HeapUsage>;
  send<T = unknown>(method: string, params?: object): Promise<T>;
  close(): void;
}> {
  const worker = new Worker(SESSION, { eval: true, workerData: url });
  worker.unref();
  let id = 0;
  const pending = new Map<number, (r: unknown) => void>();
  const call = <T>(method: string, params?: object) =>
    new Promise<T>((resolve) => {
      const my = ++id;
      pending.set(my, resolve as (r: unknown) => void);
      worker.postMessage({ id: my, method, ...(params && { params }) });
    });
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (m: { open?: true; error?: string | object; id?: number; result?: unknown }) => {
      if (m.open) resolve();
      else if (typeof m.error === 'string') reject(new Error(m.error));
      else if (m.id !== undefined) pending.get(m.id)?.(m.result ?? {}), pending.delete(m.id);
    });
    worker.on('error', reject);
  });
  return {
    usage: () => call<HeapUsage>('Runtime.getHeapUsage'),
    /** After a full garbage collection (HeapProfiler.collectGarbage): what the isolate holds, not what it has not freed yet. */
    live: async () => (await call('HeapProfiler.collectGarbage'), call<HeapUsage>('Runtime.getHeapUsage')),
    send: call,
    close: () => worker.postMessage('close'),
  };
}
