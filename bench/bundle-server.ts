/**
 * Serves the deployable Worker bundle (what `wrangler deploy` uploads) straight on workerd through Miniflare,
 * with the bindings wrangler.toml declares — no wrangler dev proxy in front. `wrangler dev` runs two workerd
 * processes (a proxy Worker that queues requests across reloads and logs each one through Node, then the user
 * Worker), which adds ~4 ms per request that a deployed Worker does not pay. The benchmark measures both.
 *   node bench/bundle-server.ts <port> <state-dir> [NAME=value …]
 * Prints "ready <url>" once listening; stops on SIGTERM/SIGINT.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';

const root = join(import.meta.dirname, '..');
const [port, state, ...assignments] = process.argv.slice(2);
if (!port || !state) throw new Error('usage: node bench/bundle-server.ts <port> <state-dir> [NAME=value …]');
const vars = Object.fromEntries(assignments.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));

const out = mkdtempSync(join(tmpdir(), 'fedge-bundle-'));
execFileSync(process.execPath, [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out], { cwd: root, stdio: 'ignore' });
const kind = (f: string) => (f.endsWith('.wasm') ? 'CompiledWasm' : f.endsWith('.onnx') ? 'Data' : f.endsWith('.js') ? 'ESModule' : undefined);
const files = readdirSync(out).filter((f) => kind(f)).sort((a, b) => Number(b === 'index.js') - Number(a === 'index.js'));

// wrangler's own reading of wrangler.toml (+ .dev.vars), so the bindings match `wrangler dev` exactly.
const { workerOptions: w } = unstable_getMiniflareWorkerOptions(join(root, 'wrangler.toml')) as unknown as { workerOptions: Record<string, any> };
// FEDGE_BUNDLE_AGGREGATOR_ISOLATE=1: the ShardAggregator objects live in a second Worker (same bundle), so in an
// isolate of their own — the scale simulation reads their memory apart from the routes' and the coordinator's.
const apart = process.env.FEDGE_BUNDLE_AGGREGATOR_ISOLATE === '1';
const AGGREGATORS = 'fedge-aggregators';
const modules = files.map((f) => ({ type: kind(f)!, path: join(out, f) }));
const aggregatorWorker = {
  name: AGGREGATORS,
  modulesRoot: out,
  modules,
  compatibilityDate: w.compatibilityDate,
  compatibilityFlags: w.compatibilityFlags,
  durableObjects: { SHARD_AGGREGATOR: w.durableObjects.SHARD_AGGREGATOR, FEDERATED_TASK: { ...w.durableObjects.FEDERATED_TASK, scriptName: 'fedge' } },
  bindings: { ...w.bindings, ...vars },
};
const mf = new Miniflare(convertV4MiniflareOptions({
  host: '127.0.0.1',
  port: Number(port),
  resourcePersistencePath: state,
  logRequests: false,
  // FEDGE_BENCH_INSPECTOR=1: with the V8 inspector on, as wrangler dev runs the Worker (to tell its cost apart).
  ...(process.env.FEDGE_BENCH_INSPECTOR === '1' ? { inspectorPort: 0 } : {}),
  workers: [{
    name: 'fedge',
    modulesRoot: out,
    modules,
    compatibilityDate: w.compatibilityDate,
    compatibilityFlags: w.compatibilityFlags,
    r2Buckets: w.r2Buckets,
    durableObjects: apart ? { ...w.durableObjects, SHARD_AGGREGATOR: { ...w.durableObjects.SHARD_AGGREGATOR, scriptName: AGGREGATORS } } : w.durableObjects,
    ratelimits: w.ratelimits,
    bindings: { ...w.bindings, ...vars },
  }, ...(apart ? [aggregatorWorker] : [])],
} as Parameters<typeof convertV4MiniflareOptions>[0]));
const url = await mf.ready;
console.log(`ready ${url}`);

const stop = async () => {
  await mf.dispose();
  rmSync(out, { recursive: true, force: true });
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
