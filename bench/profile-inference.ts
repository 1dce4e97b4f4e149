/**
 * npm run bench:profile — where one inference request's CPU goes inside workerd: the deployable bundle on workerd
 * (dev/harness/bundle-server.ts, inspector on), V8's CPU profiler (DevTools Protocol `Profiler`, through workerd's
 * inspector) recording while 32 connections send one-digit mnist-mlp requests (OIP JSON). Prints the share of the
 * Worker isolate's samples spent in WASM (ONNX Runtime), garbage collection and JS, the functions with the most
 * self time, and the inclusive time of the route's steps (body read + JSON parse, schema validation, tensor
 * decoding, the ORT run, response encoding). Writes the profile to bench/results/inference.cpuprofile (open it in
 * Chrome DevTools) and the summary to bench/results/profile.json. BENCH_REQUESTS: requests (default 6000).
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMnist } from '../models/data/mnist.ts';
import { startBundleServer } from '../dev/harness/local-server.ts';
import { openHeapProbe, workerInspectorUrls } from '../dev/harness/isolate-heap.ts';
import { rssOfGroup } from '../dev/harness/process-memory.ts';
import { runLoad } from './load.ts';

const root = join(import.meta.dirname, '..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 6000);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The route's steps, by the functions that do them (functions/routes/inference.ts and below). */
const STEPS: Record<string, string[]> = {
  'read body + JSON.parse': ['readRequest', 'parseJson'],
  'schema validation (zod)': ['safeParse'],
  'tensor decoding': ['decodeInputs'],
  'ORT run (session cache, WASM)': ['run'],
  'response JSON (toJsonData, c.json)': ['toJsonData', 'json'],
  'middleware (count, request id, CORS, rate limit, body budget)': [
    'countRequests',
    'requestId',
    'corsPolicy',
    'rateLimit',
    'bodyBudget',
    'drainUnreadBody',
  ],
};

const body = JSON.stringify({
  inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(loadMnist().test.x.subarray(0, 784)) }],
});
const state = mkdtempSync(join(tmpdir(), 'fedge-profile-'));
process.env.FEDGE_BENCH_INSPECTOR = '1';
const server = await startBundleServer({ persistTo: state, vars: { FEDGE_RATE_LIMIT: 'off' } });
try {
  const workerd = rssOfGroup(server.child.pid!).filter((p) => p.command.includes('workerd'));
  let url: string | undefined;
  for (const p of workerd) url ??= (await workerInspectorUrls(p.pid)).get('fedge');
  if (!url) throw new Error("workerd's inspector did not list the Worker");
  const inspector = await openHeapProbe(url);
  const infer = `${server.url}/v2/models/mnist-mlp/infer`;
  await runLoad(infer, body, { connections: 32, requests: 500, warmup: 100 }); // warm: JIT, session
  await inspector.send('Profiler.enable');
  await inspector.send('Profiler.setSamplingInterval', { interval: 100 }); // µs
  await inspector.send('Profiler.start');
  console.log(`profiling ${REQUESTS} requests at 32 connections…`);
  const load = await runLoad(infer, body, { connections: 32, requests: REQUESTS, warmup: 0 });
  const { profile } = await inspector.send<{ profile: Profile }>('Profiler.stop');
  inspector.close();
  console.log(
    `  ${load.rps.toFixed(0)} req/s while profiling (the profiler costs some), p50 ${load.p50.toFixed(2)} ms`,
  );

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const total = profile.samples.length;
  const selfOf = new Map<number, number>();
  for (const s of profile.samples) selfOf.set(s, (selfOf.get(s) ?? 0) + 1);
  const inclusive = new Map<number, number>();
  const visit = (id: number): number => {
    const n = byId.get(id)!;
    const v = (selfOf.get(id) ?? 0) + (n.children ?? []).reduce((a, c) => a + visit(c), 0);
    inclusive.set(id, v);
    return v;
  };
  visit(profile.nodes[0]!.id);
  const kind = (n: ProfileNode) =>
    n.callFrame.url.startsWith('wasm://')
      ? 'WASM (ONNX Runtime)'
      : n.callFrame.functionName === '(garbage collector)'
        ? 'garbage collection'
        : n.callFrame.functionName === '(idle)'
          ? 'idle (waiting for I/O)'
          : n.callFrame.functionName === '(program)'
            ? 'runtime (workerd/V8, not JS)'
            : 'JavaScript';
  const kinds = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  for (const [id, count] of selfOf) {
    const n = byId.get(id)!;
    kinds.set(kind(n), (kinds.get(kind(n)) ?? 0) + count);
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber + 1}`;
    selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + count);
  }
  const pct = (v: number) => `${((100 * v) / total).toFixed(1).padStart(5)} %`;
  const busy = total - (kinds.get('idle (waiting for I/O)') ?? 0);
  console.log(
    `\nWorker isolate samples: ${total} (${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s), busy ${pct(busy)}`,
  );
  for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(32)} ${pct(v)}`);
  console.log('\nmost self time:');
  const top = [...selfByFunction].sort((a, b) => b[1] - a[1]).slice(0, 25);
  for (const [k, v] of top) console.log(`  ${pct(v)}  ${k}`);
  // A step's inclusive time: samples under its outermost frames (a function that recurses counts once).
  const stepShare: Record<string, number> = {};
  console.log('\nroute steps (inclusive, share of all samples; per request = share × wall time / requests):');
  const perRequestMs = (v: number) => ((v / total) * ((profile.endTime - profile.startTime) / 1e3)) / REQUESTS;
  for (const [step, names] of Object.entries(STEPS)) {
    let v = 0;
    const walk = (id: number, inside: boolean) => {
      const n = byId.get(id)!;
      // esbuild renames a function whose name clashes (cors → cors2): match the name without its suffix.
      const hit = !inside && names.includes(n.callFrame.functionName.replace(/\d+$/, ''));
      if (hit) v += inclusive.get(id)!;
      for (const c of n.children ?? []) walk(c, inside || hit);
    };
    walk(profile.nodes[0]!.id, false);
    stepShare[step] = v / total;
    console.log(`  ${step.padEnd(64)} ${pct(v)}   ${(perRequestMs(v) * 1000).toFixed(0).padStart(5)} µs/request`);
  }
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/inference.cpuprofile'), JSON.stringify(profile));
  writeFileSync(
    join(root, 'bench/results/profile.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        requests: REQUESTS,
        rps: load.rps,
        samples: total,
        kinds: Object.fromEntries([...kinds].map(([k, v]) => [k, v / total])),
        top: top.map(([k, v]) => ({ function: k, share: v / total })),
        steps: stepShare,
      },
      null,
      2,
    ),
  );
} finally {
  await server.stop();
  rmSync(state, { recursive: true, force: true });
}
