/**
 * The deployable Worker bundle (what `wrangler deploy` uploads) served straight on workerd through Miniflare, with
 * the bindings, static assets and migrations wrangler.toml declares (read by wrangler itself, .dev.vars included).
 * No wrangler dev proxy in front: `wrangler dev` runs a second workerd with a proxy Worker that holds requests across
 * reloads and reports each one to Node, ~3 ms a request that a deployed Worker does not pay (bench:inference).
 * Used by `npm start` (dev/start.ts, with reload on change) and by the benchmarks (dev/harness/bundle-server.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';

const root = join(import.meta.dirname, '..');
const run = promisify(execFile);

export interface WorkerServerOptions {
  port: number;
  /** Where R2, Durable Object (SQLite) and rate-limit state live; `<dir>/v3` is wrangler dev's layout (`--persist-to <dir>`). */
  persistTo: string;
  /** Variables over wrangler.toml's and .dev.vars'. */
  vars?: Record<string, string>;
  /** Serve web/dist as static assets in front of the Worker, as a deployment does. */
  assets?: boolean;
  /** V8 inspector on a free port (the benchmarks read the isolate's heap and CPU profile through it). */
  inspector?: boolean;
  /** The ShardAggregator objects in a Worker (an isolate) of their own, so their memory is read apart. */
  aggregatorsApart?: boolean;
}

export interface WorkerServer {
  url: string;
  /** Rebuilds the bundle (and web/dist) and restarts the Worker on the same port with the same state. */
  reload(): Promise<void>;
  dispose(): Promise<void>;
}

type Module = { type: 'ESModule' | 'CompiledWasm' | 'Data'; path: string };

/** `wrangler deploy --dry-run`: runs wrangler.toml's [build] (the web app) and writes the bundle to a new folder. */
async function bundle(): Promise<{ dir: string; modules: Module[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'fedge-bundle-'));
  await run(
    process.execPath,
    [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', dir],
    { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  const kind = (f: string) =>
    f.endsWith('.wasm') ? 'CompiledWasm' : f.endsWith('.onnx') ? 'Data' : f.endsWith('.js') ? 'ESModule' : undefined;
  // The entry module first.
  const files = readdirSync(dir)
    .filter((f) => kind(f))
    .sort((a, b) => Number(b === 'index.js') - Number(a === 'index.js'));
  return { dir, modules: files.map((f) => ({ type: kind(f)!, path: join(dir, f) })) };
}

const AGGREGATORS = 'fedge-aggregators';
const WEB = 'fedge-web';

function miniflareOptions(opts: WorkerServerOptions, built: { dir: string; modules: Module[] }) {
  // wrangler's own reading of wrangler.toml (+ .dev.vars), so the bindings match `wrangler dev` and a deployment.
  const { workerOptions: w } = unstable_getMiniflareWorkerOptions(join(root, 'wrangler.toml')) as unknown as {
    workerOptions: Record<string, any>;
  };
  const common = {
    modulesRoot: built.dir,
    modules: built.modules,
    compatibilityDate: w.compatibilityDate,
    compatibilityFlags: w.compatibilityFlags,
    bindings: { ...w.bindings, ...opts.vars },
  };
  const main = {
    ...common,
    name: 'fedge',
    r2Buckets: w.r2Buckets,
    durableObjects: opts.aggregatorsApart
      ? { ...w.durableObjects, SHARD_AGGREGATOR: { ...w.durableObjects.SHARD_AGGREGATOR, scriptName: AGGREGATORS } }
      : w.durableObjects,
    ratelimits: w.ratelimits,
    analyticsEngineDatasets: w.analyticsEngineDatasets,
    // With the web app: the API's paths (wrangler.toml's run_worker_first) reach the Worker directly, as the bundle.
    ...(opts.assets
      ? {
          routes: (w.assets.routerConfig?.static_routing?.user_worker ?? w.assets.run_worker_first ?? []).map(
            (p: string) => `*${p}`,
          ),
        }
      : {}),
  };
  // The web app: Miniflare's asset router (the same router Cloudflare runs in front of a Worker with assets) in a
  // Worker of its own, for every path the API routes do not claim; a path that is no file is passed to the Worker
  // (its JSON 404). Apart, because the router is a second JS hop on every request it sees: in front of the API it
  // halved the inference rate on 2 cores (bench:inference).
  const web = {
    name: WEB,
    modulesRoot: built.dir,
    modules: [
      {
        type: 'ESModule',
        path: join(built.dir, 'web-router.js'),
        contents: 'export default { fetch: (request, env) => env.API.fetch(request) };',
      },
    ],
    compatibilityDate: w.compatibilityDate,
    serviceBindings: { API: 'fedge' },
    assets: w.assets,
  };
  const aggregators = {
    ...common,
    name: AGGREGATORS,
    durableObjects: {
      SHARD_AGGREGATOR: w.durableObjects.SHARD_AGGREGATOR,
      FEDERATED_TASK: { ...w.durableObjects.FEDERATED_TASK, scriptName: 'fedge' },
    },
  };
  return convertV4MiniflareOptions({
    host: '127.0.0.1',
    port: opts.port,
    resourcePersistencePath: join(opts.persistTo, 'v3'),
    logRequests: false,
    // The placeholder `Request.cf`: Miniflare would otherwise fetch the real one from Cloudflare on every start.
    cf: false,
    ...(opts.inspector ? { inspectorPort: 0 } : {}),
    // The first Worker answers what no route claims.
    workers: [...(opts.assets ? [web] : []), main, ...(opts.aggregatorsApart ? [aggregators] : [])],
  } as Parameters<typeof convertV4MiniflareOptions>[0]);
}

export async function serveWorker(opts: WorkerServerOptions): Promise<WorkerServer> {
  let built = await bundle();
  const mf = new Miniflare(miniflareOptions(opts, built));
  const url = (await mf.ready).origin;
  return {
    url,
    async reload() {
      const next = await bundle();
      try {
        await mf.setOptions(miniflareOptions(opts, next));
      } catch (e) {
        rmSync(next.dir, { recursive: true, force: true });
        throw e;
      }
      rmSync(built.dir, { recursive: true, force: true });
      built = next;
    },
    async dispose() {
      await mf.dispose();
      rmSync(built.dir, { recursive: true, force: true });
    },
  };
}
