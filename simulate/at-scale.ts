/**
 * `npm run simulate -- --shard-size S` — a federated task at scale: N devices per round split into shards of at most
 * S (parallel ShardAggregator objects under the task's coordinator), simulated as real Participants (the client SDK:
 * download, train with TensorFlow.js, SecAgg+ over HTTP) spread over worker threads, against the local edge server.
 * Per round it prints a progress bar, the round's wall time, each shard's outcome, and the peak resident memory of
 * workerd during the round (sampled from /proc every 250 ms) and of its Worker isolate (JS heap + ArrayBuffers,
 * through workerd's inspector: dev/harness/isolate-heap.ts).
 * workerd runs the Worker and every Durable Object of this server in one process, so its figure covers all the
 * round's aggregators, the coordinator and the routes together; with --per-round equal to --shard-size the process
 * holds one SecAgg+ instance, which measures one object's memory (minus the idle baseline printed first).
 *
 *   npm run simulate -- --devices 1000 --per-round 1000 --shard-size 100 --rounds 2 [--dropout 0.3]
 *                       [--stage-seconds 30] [--threads 2] [--url http://127.0.0.1:8787]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { DropPoint } from '../client-sdk/federated/participant.ts';
import type { RoundRecord } from '../federated/aggregation/task-protocol.ts';
import { toBase64 } from '../federated/bytes.ts';
import { flattenWeights } from '../federated/model/flat-weights.ts';
import { importOnnxWeights } from '../federated/model/onnx-import.ts';
import { loadMnist, type LabelledSet } from '../models/data/mnist.ts';
import { nonIidShards } from '../models/data/non-iid.ts';
import { progressBar } from '../models/progress.ts';
import { mnistMlp } from '../models/specs.ts';
import { type LocalServer, startBundleServer } from '../dev/harness/local-server.ts';
import { openHeapProbe, workerInspectorUrls } from '../dev/harness/isolate-heap.ts';
import { rssOfGroup } from '../dev/harness/process-memory.ts';
import { servedAccuracy, status } from './simulation.ts';

export interface ScaleOptions {
  devices: number;
  perRound: number;
  shardSize: number;
  rounds: number;
  dropout: number;
  stageSeconds: number;
  threads: number;
  url?: string | undefined;
  /** Where the results JSON goes (default simulate/results). */
  resultsDir?: string | undefined;
}

export interface ScaleResult {
  task: string;
  rounds: {
    round: number;
    seconds: number;
    record: RoundRecord;
    peakMiB: number;
    isolates: { name: string; peakSampledMiB: number; peakLiveMiB: number; afterRoundLiveMiB: number }[];
    accuracy: number;
  }[];
}

type ToWorker = { kind: 'round'; round: number; drops: Record<string, DropPoint | null> };
type FromWorker =
  | { kind: 'enrolled' }
  | { kind: 'device-done'; status: string; reason?: string }
  | { kind: 'round-done' }
  | { kind: 'error'; message: string };

interface WorkerInput {
  url: string;
  task: string;
  token: string;
  devices: (LabelledSet & { id: string })[];
}

/** Worker thread: its slice of the devices as Participants; joins the rounds the main thread starts. */
async function deviceWorker(input: WorkerInput): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { useNodeWasm } = await import('../client-sdk/training/node-backend.ts');
  const { useNodeKeystream } = await import('../federated/secagg/node-keystream.ts');
  const { Participant } = await import('../client-sdk/federated/participant.ts');
  const { createIdentity } = await import('../federated/secagg/client.ts');
  useNodeWasm();
  await tf.setBackend('wasm');
  // A device in Node masks with node:crypto's AES-256-CTR (the same keystream as Web Crypto's, faster here).
  useNodeKeystream();
  const post = (m: FromWorker) => parentPort!.postMessage(m);
  const participants = await Promise.all(
    input.devices.map(async (d) => {
      const p = new Participant({
        url: input.url,
        task: input.task,
        identity: await createIdentity(d.id),
        backend: 'wasm',
        pollMs: 500,
      });
      await p.enroll(input.token);
      return { p, d };
    }),
  );
  post({ kind: 'enrolled' });
  parentPort!.on('message', async (m: ToWorker) => {
    try {
      await Promise.all(
        participants.map(async ({ p, d }) => {
          const dropAt = m.drops[d.id];
          if (dropAt === undefined) return;
          const r = await p
            .joinRound({ x: d.x, y: d.y }, { dropAt: dropAt ?? undefined, waitMs: 600_000 })
            .catch((e: Error) => ({ status: 'failed', reason: e.message }));
          post({ kind: 'device-done', status: r.status, ...('reason' in r && r.reason ? { reason: r.reason } : {}) });
        }),
      );
      post({ kind: 'round-done' });
    } catch (e) {
      post({ kind: 'error', message: String(e) });
    }
  });
}

if (!isMainThread && (workerData as { atScale?: boolean })?.atScale)
  await deviceWorker((workerData as { input: WorkerInput }).input);

const ADMIN = {
  Authorization: `Bearer ${process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token'}`,
  'Content-Type': 'application/json',
};

export async function runAtScale(o: ScaleOptions): Promise<ScaleResult> {
  if (!(o.shardSize >= 3 && o.perRound >= 3 && o.devices >= o.perRound))
    throw new Error('--shard-size and --per-round must be at least 3, and --devices at least --per-round');
  let server: LocalServer | undefined, state: string | undefined;
  let url = o.url;
  if (!url) {
    state = mkdtempSync(join(tmpdir(), 'fedge-scale-'));
    process.stdout.write('starting the local edge server… ');
    // The deployable bundle on workerd (dev/harness/bundle-server.ts) with its V8 inspector open and nobody attached —
    // wrangler dev holds the inspector's one session itself — so the Worker isolate's heap can be read.
    process.env.FEDGE_BENCH_INSPECTOR = '1';
    process.env.FEDGE_BUNDLE_AGGREGATOR_ISOLATE = '1';
    server = await startBundleServer({ persistTo: state, vars: { FEDGE_RATE_LIMIT: 'off' } });
    url = server.url;
    console.log(`ready at ${url} (${(server.readyAfterMs / 1000).toFixed(1)} s)`);
  }
  const workers: Worker[] = [];
  try {
    const task = `scale-${Date.now().toString(36)}`;
    const token = `enroll-${crypto.randomUUID()}`;
    const weights = importOnnxWeights(
      mnistMlp,
      readFileSync(join(import.meta.dirname, '../models/mnist-mlp/model.fp32.onnx')),
    );
    const created = await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: ADMIN,
      body: JSON.stringify({
        task,
        model: task,
        alias: 'federated',
        spec: mnistMlp,
        weights: toBase64(new Uint8Array(flattenWeights(mnistMlp, weights).buffer)),
        rounds: o.rounds,
        devicesPerRound: o.perRound,
        shardSize: o.shardSize,
        stageSeconds: o.stageSeconds,
        expectedDropout: o.dropout,
        training: { epochs: 1, batchSize: 10, learningRate: 0.02, optimizer: 'sgd' },
        serverOptimizer: { kind: 'fedavg' },
        update: { clip: 1, maxExamples: 200 },
        enrollmentToken: token,
      }),
    });
    if (!created.ok) throw new Error(`creating the task: ${created.status} ${await created.text()}`);
    const { settings } = (await created.json()) as {
      settings: { secagg: { neighbours: number; threshold: number }; minDevices: number };
    };
    const { train, test } = loadMnist();
    const shards = nonIidShards(train, o.devices);
    const ids = shards.map((_, i) => `device-${String(i).padStart(4, '0')}`);
    console.log(
      `task ${task}: ${o.devices} devices, ${o.perRound} per round in shards of ≤ ${o.shardSize} (k ${settings.secagg.neighbours}, t ${settings.secagg.threshold}, min ${settings.minDevices} per shard), ${o.rounds} rounds, ${o.dropout * 100} % dropping out, mnist-mlp (d = ${flattenWeights(mnistMlp, weights).length}), devices over ${o.threads} worker threads`,
    );

    // Baseline memory of the server before any device joins.
    const group = server?.child.pid;
    const rss = () => (group === undefined ? [] : rssOfGroup(group).filter((x) => x.command.includes('workerd')));
    const idle = rss()[0];
    // Each Worker isolate's heap (JS heap + ArrayBuffers) through workerd's inspector — what an isolate's memory
    // limit counts. The aggregators run in an isolate of their own (FEDGE_BUNDLE_AGGREGATOR_ISOLATE), apart from the
    // routes and the coordinator, so their figure is the shards' objects alone.
    const urls = new Map<string, string>();
    for (const p of rss()) for (const [k, v] of await workerInspectorUrls(p.pid)) urls.set(k, v);
    const isolates = await Promise.all(
      [...urls].map(async ([name, url]) => ({ name, probe: await openHeapProbe(url), idle: 0, peak: 0, live: 0 })),
    );
    const MiB = (b: number) => b / 2 ** 20;
    const total = ({ usedSize, backingStorageSize }: { usedSize: number; backingStorageSize: number }) =>
      MiB(usedSize + backingStorageSize);
    // Live: after a forced full GC — what the objects hold, not garbage V8 has not collected yet. workerd runs an
    // inspector's GC request only when the isolate next runs something: the Worker's is woken with a health check;
    // an isolate with nothing to run (the aggregators' before a round) answers with its plain usage after 2 s.
    const liveOf = async (i: { name: string; probe: Awaited<ReturnType<typeof openHeapProbe>> }) => {
      const woken =
        i.name === 'fedge'
          ? fetch(`${url}/v2/health/live`).then(
              (r) => r.body?.cancel(),
              () => undefined,
            )
          : undefined;
      const u = await Promise.race([i.probe.live(), new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
      await woken;
      return total(u ?? (await i.probe.usage()));
    };
    for (const i of isolates) i.idle = await liveOf(i);
    if (idle)
      console.log(
        `server idle: ${idle.command} ${idle.peakRssMiB.toFixed(0)} MiB resident; isolate heaps (JS heap + ArrayBuffers, live): ${isolates.map((i) => `${i.name} ${i.idle.toFixed(0)} MiB`).join(', ')}`,
      );
    const aggregatorIsolate = isolates.find((i) => i.name.endsWith('aggregators'));

    let onMessage: (m: FromWorker) => void = () => undefined;
    process.stdout.write(`enrolling ${o.devices} devices… `);
    const enrolled = Promise.all(
      Array.from({ length: o.threads }, (_, w) => {
        const slice = shards.flatMap((s, i) =>
          i % o.threads === w ? [{ id: ids[i]!, x: s.x, y: s.y, n: s.n, features: s.features }] : [],
        );
        const worker = new Worker(new URL(import.meta.url), {
          workerData: { atScale: true, input: { url, task, token, devices: slice } satisfies WorkerInput },
        });
        workers.push(worker);
        return new Promise<void>((resolve, reject) => {
          worker.on('error', reject);
          worker.on('message', (m: FromWorker) => (m.kind === 'enrolled' ? resolve() : onMessage(m)));
        });
      }),
    );
    await enrolled;
    console.log('done');

    const rows: ScaleResult['rounds'] = [];
    const stages: DropPoint[] = ['before-share-keys', 'before-masked-input', 'before-unmask'];
    for (let round = 1; round <= o.rounds; round++) {
      const started = performance.now();
      const chosen = [...ids].sort(() => Math.random() - 0.5).slice(0, o.perRound);
      const drops = Math.round(o.dropout * chosen.length);
      const plan = Object.fromEntries(chosen.map((id, k) => [id, k < drops ? stages[k % stages.length]! : null]));
      let done = 0,
        finished = 0,
        peak = 0,
        ticks = 0;
      for (const i of isolates) (i.peak = 0), (i.live = 0);
      const bar = progressBar(`round ${round}`, chosen.length);
      const failures: string[] = [];
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss()[0]?.peakRssMiB ?? 0);
        const gc = ++ticks % 4 === 0;
        for (const i of isolates) {
          if (gc) void liveOf(i).then((m) => (i.live = Math.max(i.live, m)));
          else void i.probe.usage().then((u) => (i.peak = Math.max(i.peak, total(u))));
        }
      }, 250);
      const allDone = new Promise<void>((resolve, reject) => {
        onMessage = (m) => {
          if (m.kind === 'device-done') {
            done++;
            if (m.status === 'failed') failures.push(m.reason ?? '');
            bar.update(
              done,
              `${((performance.now() - started) / 1000).toFixed(0)} s, server ${peak.toFixed(0)} MiB resident${aggregatorIsolate ? `, aggregators' isolate ${aggregatorIsolate.peak.toFixed(0)} MiB` : ''}`,
            );
          } else if (m.kind === 'round-done' && ++finished === o.threads) resolve();
          else if (m.kind === 'error') reject(new Error(m.message));
        };
      });
      for (const w of workers) w.postMessage({ kind: 'round', round, drops: plan } satisfies ToWorker);
      await allDone;
      let s = await status(url, task);
      while (s.history.find((h) => h.round === round)?.status === 'running') {
        await new Promise((r) => setTimeout(r, 250));
        s = await status(url, task);
      }
      clearInterval(sampler);
      peak = Math.max(peak, rss()[0]?.peakRssMiB ?? 0);
      const seconds = (performance.now() - started) / 1000;
      const record = s.history.find((h) => h.round === round)!;
      const accuracy = record.version ? await servedAccuracy(url, task, record.version, test) : NaN;
      // What the isolate still holds once the round is over (a leak per round shows here, not in the peak).
      await new Promise((r) => setTimeout(r, 2000));
      const after = await Promise.all(isolates.map(liveOf));
      bar.done(`devices done in ${seconds.toFixed(0)} s`);
      if (failures.length) console.log(`  ${failures.length} devices failed, e.g.: ${failures[0]}`);
      const byShard = (record.shards ?? [])
        .map((x, j) => `#${j} ${x.survivors}/${x.devices}${x.status === 'abandoned' ? ` abandoned (${x.reason})` : ''}`)
        .join(', ');
      const shards = record.shards?.length ?? 1;
      console.log(
        `  round ${round}: ${record.status}${record.reason ? ` (${record.reason})` : ''} in ${seconds.toFixed(1)} s; ${record.unmasked} unmasked of ${record.advertised} checked in; held-out accuracy ${(accuracy * 100).toFixed(2)} %; workerd peak ${peak.toFixed(0)} MiB resident`,
      );
      for (const [j, i] of isolates.entries()) {
        const perShard =
          i === aggregatorIsolate
            ? ` — ${((i.live - i.idle) / shards).toFixed(1)} MiB per aggregator (${shards} in it)`
            : '';
        console.log(
          `  isolate ${i.name}: heap peak ${i.peak.toFixed(0)} MiB sampled, ${i.live.toFixed(0)} MiB live after GC (idle ${i.idle.toFixed(0)})${perShard}, ${after[j]!.toFixed(0)} MiB live after the round`,
        );
      }
      if (byShard) console.log(`  shards (survivors/devices): ${byShard}`);
      rows.push({
        round,
        seconds,
        record,
        peakMiB: peak,
        isolates: isolates.map((i, j) => ({
          name: i.name,
          peakSampledMiB: i.peak,
          peakLiveMiB: i.live,
          afterRoundLiveMiB: after[j]!,
        })),
        accuracy,
      });
    }
    const dir = o.resultsDir ?? join(import.meta.dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, `${task}.json`),
      JSON.stringify(
        {
          task,
          options: o,
          idleMiB: idle?.peakRssMiB,
          idleHeapMiB: Object.fromEntries(isolates.map((i) => [i.name, i.idle])),
          rounds: rows,
        },
        null,
        2,
      ),
    );
    console.log(`results: ${join(dir, `${task}.json`)}`);
    for (const i of isolates) i.probe.close();
    return { task, rounds: rows };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await server?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  }
}

export const defaultThreads = () => Math.max(1, availableParallelism());
