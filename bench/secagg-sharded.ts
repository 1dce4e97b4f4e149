/**
 * npm run bench:secagg:sharded — SecAgg+ server cost when a round is split into shards (federated/secagg/shards.ts;
 * Bonawitz et al., SysML 2019, Aggregators under a Master Aggregator). For n devices, d words and a dropout fraction
 * (devices that vanish after sharing keys, the costliest case, as in bench/secagg.ts): devices are assigned with
 * assignShards from a random seed, each shard is a full SecAgg+ instance with k, t from secAggParameters for its
 * size, and the coordinator adds the shards' unmasked sums. Everything runs in worker_threads (one per core):
 *  1. simulate — each shard's devices and server run a real round through the wire format; every device message
 *     is recorded as bytes (with the shard's exact input sum, computed from the plain inputs). Not timed: device
 *     work happens on devices.
 *  2. serve — fresh workers (cold key caches, warmed-up JIT) replay each shard's recorded messages into a new
 *     server, as the shard's aggregator would receive them: decode, authenticate, accept, close each stage, unmask.
 *     The server is deterministic given its messages, so the replay does exactly the work the live round's server
 *     did. Twice: (a) alone — one worker, one shard at a time: each shard's wall and whole-process CPU time with
 *     nothing else of the bench running, the one-core-per-shard figure; (b) in parallel — shards queued over all
 *     workers, then the coordinator's add: the round's measured wall time on this machine.
 * The combined sum is checked against the exact sum after both passes (an Error otherwise). CPU times: the worker
 * thread's (process.threadCpuUsage) misses Web Crypto's Ed25519/X25519/SHA-256 jobs, which Node runs on libuv's
 * threadpool; the whole process's (process.cpuUsage), read in the alone pass, counts them. Projection with one core
 * per shard = max alone shard wall + coordinator add. Other jobs on the machine inflate walls: the load average is
 * printed.
 *   BENCH_N=500 BENCH_D=10000 BENCH_SHARD=100 BENCH_DROP=0.3 BENCH_WORKERS=2 npm run bench:secagg:sharded
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import {
  clientAdvertiseKeys,
  clientMaskedInput,
  clientShareKeys,
  clientUnmask,
  createIdentity,
  type ClientState,
} from '../federated/secagg/client.ts';
import type { DeviceMessage, RoundConfig } from '../federated/secagg/messages.ts';
import { useNodeKeystream } from '../federated/secagg/node-keystream.ts';
import { secAggParameters } from '../federated/secagg/parameters.ts';
import { addMask } from '../federated/secagg/prg.ts';
import { randomBytes, randomWords } from '../federated/random.ts';
import {
  serverCloseAdvertise,
  serverCloseMasked,
  serverCloseShares,
  serverCloseUnmask,
  serverInit,
  serverReceive,
} from '../federated/secagg/server.ts';
import { assignShards, shardPlan } from '../federated/secagg/shards.ts';
import { decodeMessage, encodeMessage } from '../federated/secagg/wire.ts';

// Aggregators run in Node here; each worker is its own isolate, so each installs node:crypto's keystream.
useNodeKeystream();

/** What phase 1 hands to phase 2: a shard's round, as the bytes its server received, stage by stage. */
interface ShardRecord {
  config: RoundConfig;
  enrolled: [string, Uint8Array][];
  /** Encoded device messages of advertise-keys, share-keys, masked-input, unmask, in arrival order. */
  stages: Uint8Array[][];
}
interface Simulated {
  record: ShardRecord;
  expected: Uint32Array;
  devices: number;
  survivors: number;
}
interface Served {
  sum: Uint32Array;
  wallMs: number;
  finishWallMs: number;
  survivors: number;
  dropped: number;
  /** This worker thread's CPU time (process.threadCpuUsage): misses the Web Crypto jobs Node runs on its threadpool. */
  threadCpuMs: number;
  /** The whole process's CPU time (process.cpuUsage): this shard's true cost when it is the only one running. */
  processCpuMs: number;
}
type Job =
  | { kind: 'simulate'; roundId: string; devices: string[]; d: number; dropout: number }
  | { kind: 'serve'; record: ShardRecord }
  | { kind: 'warm-up' };

const buffers = (arrays: Uint8Array[]) => arrays.map((a) => a.buffer as ArrayBuffer);

/** Phase 1: a whole round of one shard, devices and server in this worker; returns what the server received. */
async function simulate(job: Extract<Job, { kind: 'simulate' }>): Promise<Simulated> {
  const { d, dropout } = job;
  const n = job.devices.length;
  const { neighbours, threshold } = secAggParameters({ devices: n, dropoutRate: dropout, failureProbability: 1e-3 });
  const config: RoundConfig = { roundId: job.roundId, neighbours, threshold, graphSeed: randomBytes(32), length: d };
  const identities = await Promise.all(job.devices.map((id) => createIdentity(id)));
  const enrolled = identities.map((x) => [x.id, x.publicKey] as [string, Uint8Array]);
  const server = serverInit(config, Object.fromEntries(enrolled));
  const stages: Uint8Array[][] = [[], [], [], []];
  const send = async (stage: number, m: DeviceMessage) => {
    const bytes = encodeMessage(m);
    stages[stage]!.push(bytes);
    await serverReceive(server, decodeMessage(bytes, { length: d }));
  };
  const states = new Map<string, ClientState>();
  for (const x of identities) {
    const { state, message } = await clientAdvertiseKeys(config, x);
    states.set(x.id, state);
    await send(0, message);
  }
  for (const [id, b] of await serverCloseAdvertise(server)) {
    const { state, message } = await clientShareKeys(states.get(id)!, b);
    states.set(id, state);
    await send(1, message);
  }
  // The dropped devices vanish now, after sharing keys and before their input (as in bench/secagg.ts).
  const gone = new Set(job.devices.slice(0, Math.round(n * dropout)));
  const expected = new Uint32Array(d);
  for (const [id, delivery] of serverCloseShares(server)) {
    if (gone.has(id)) continue;
    const input = randomWords(d);
    addMask(expected, input, 1);
    const { state, message } = await clientMaskedInput(states.get(id)!, delivery, input);
    states.set(id, state);
    await send(2, message);
  }
  const request = serverCloseMasked(server);
  for (const id of request.survivors) {
    const { state, message } = await clientUnmask(states.get(id)!, request);
    states.set(id, state);
    await send(3, message);
  }
  const result = await serverCloseUnmask(server);
  if (!result.sum.every((v, i) => v === expected[i]))
    throw new Error(`${job.roundId}: the live round's unmasked sum is wrong`);
  return { record: { config, enrolled, stages }, expected, devices: n, survivors: request.survivors.length };
}

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

/** Phase 2: one shard's aggregator, fed the recorded bytes — the timed part. */
async function serve(r: ShardRecord): Promise<Served> {
  const server = serverInit(r.config, Object.fromEntries(r.enrolled));
  const receive = async (stage: number) => {
    for (const bytes of r.stages[stage]!)
      await serverReceive(server, decodeMessage(bytes, { length: r.config.length }));
  };
  const t0 = performance.now(),
    c0 = process.threadCpuUsage(),
    p0 = process.cpuUsage();
  await receive(0);
  await serverCloseAdvertise(server);
  await receive(1);
  serverCloseShares(server);
  await receive(2);
  serverCloseMasked(server);
  await receive(3);
  const t1 = performance.now();
  const result = await serverCloseUnmask(server);
  const t2 = performance.now();
  return {
    sum: result.sum,
    wallMs: t2 - t0,
    finishWallMs: t2 - t1,
    threadCpuMs: cpuMs(process.threadCpuUsage(c0)),
    processCpuMs: cpuMs(process.cpuUsage(p0)),
    survivors: result.survivors.length,
    dropped: result.dropped.length,
  };
}

/** Shards queued over a fixed set of workers, one job per worker at a time. */
class Pool {
  readonly #idle: Worker[] = [];
  readonly #waiting: (() => void)[] = [];
  readonly #all: Worker[];
  constructor(size: number) {
    this.#all = Array.from({ length: size }, () => new Worker(new URL(import.meta.url)));
    this.#idle.push(...this.#all);
  }
  async run<T>(job: Job, transfer: ArrayBuffer[] = []): Promise<T> {
    while (this.#idle.length === 0) await new Promise<void>((wake) => this.#waiting.push(wake));
    const w = this.#idle.pop()!;
    try {
      return await new Promise<T>((resolve, reject) => {
        w.once('message', (m: { ok?: T; error?: string }) =>
          m.error !== undefined ? reject(new Error(`worker: ${m.error}`)) : resolve(m.ok!),
        );
        w.once('error', reject);
        w.postMessage(job, transfer);
      });
    } finally {
      w.removeAllListeners('error');
      this.#idle.push(w);
      this.#waiting.shift()?.();
    }
  }
  /** Runs the warm-up once on every worker (all at once: each worker takes one). */
  warmUp(): Promise<unknown> {
    return Promise.all(this.#all.map(() => this.run({ kind: 'warm-up' })));
  }
  close(): Promise<number[]> {
    return Promise.all(this.#all.map((w) => w.terminate()));
  }
}

type Stats = { median: number; max: number };
interface Row {
  n: number;
  d: number;
  dropout: number;
  shardSize: number;
  shards: number;
  workers: number;
  overflow: number;
  shardDevices: number[];
  k: number[];
  t: number[];
  survivors: number;
  /** Each shard served alone (one worker, nothing else of this bench running): the one-core-per-shard figures. */
  alone: { wallMs: Stats; unmaskStepWallMs: Stats; processCpuMs: Stats };
  /** All shards served over `workers` workers at once. */
  parallel: { wallMs: Stats; threadCpuMs: Stats };
  coordinatorAddMs: number;
  roundWallMs: number;
  projectedOneCorePerShardMs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const stats = (xs: number[]): Stats => ({ median: median(xs), max: Math.max(...xs) });

/** Serves every shard on `workers` fresh, warmed-up workers; `copy` keeps the records usable afterwards. */
async function serveAll(label: string, pass: string, simulated: Simulated[], workers: number, copy: boolean) {
  const pool = new Pool(workers);
  await pool.warmUp();
  let done = 0;
  const start = performance.now();
  const served = await Promise.all(
    simulated.map((s, i) =>
      pool.run<Served>({ kind: 'serve', record: s.record }, copy ? [] : buffers(s.record.stages.flat())).then((r) => {
        console.log(
          `  ${label} [${pass}]: shard ${i + 1}/${simulated.length} unmasked: ${r.wallMs.toFixed(0)} ms wall (unmask step ${r.finishWallMs.toFixed(0)} ms), ${r.threadCpuMs.toFixed(0)} ms thread CPU${workers === 1 ? `, ${r.processCpuMs.toFixed(0)} ms process CPU` : ''}; ${r.survivors} survivors, ${r.dropped} dropped [${++done}/${simulated.length}]`,
        );
        return r;
      }),
    ),
  );
  return { served, start, pool };
}

/** The coordinator's whole job: add the shards' sums (mod 2^32). */
function addShardSums(d: number, served: Served[]): Uint32Array {
  const total = new Uint32Array(d);
  for (const r of served) addMask(total, r.sum, 1);
  return total;
}

function checkSum(label: string, total: Uint32Array, simulated: Simulated[]): void {
  const exact = new Uint32Array(total.length);
  for (const s of simulated) addMask(exact, s.expected, 1);
  const wrong = total.findIndex((v, i) => v !== exact[i]);
  if (wrong >= 0)
    throw new Error(
      `${label}: the combined sum differs from the exact sum at word ${wrong} (${total[wrong]} ≠ ${exact[wrong]})`,
    );
}

async function runOne(n: number, d: number, dropout: number, shardSize: number, workers: number): Promise<Row> {
  const label = `n=${n} d=${d} dropout=${dropout * 100}%`;
  const devices = Array.from({ length: n }, (_, i) => `device-${String(i).padStart(5, '0')}`);
  const { shards, overflow } = await assignShards(devices, randomBytes(32), shardPlan(n, shardSize));
  const small = shards.find((s) => s.length < 3);
  if (small)
    throw new Error(
      `${label}: a shard got ${small.length} devices, too few for SecAgg+ (shard size ${shardSize} is too small for this round)`,
    );

  const sim = new Pool(workers);
  let simulatedCount = 0;
  const simulated = await Promise.all(
    shards.map((ids, i) =>
      sim
        .run<Simulated>({
          kind: 'simulate',
          roundId: `sharded-${n}-${d}-${dropout}-shard-${i}`,
          devices: ids,
          d,
          dropout,
        })
        .then((s) => {
          console.log(
            `  ${label} [simulate]: shard ${i + 1}/${shards.length} (${s.devices} devices, k=${s.record.config.neighbours}, t=${s.record.config.threshold}) [${++simulatedCount}/${shards.length}]`,
          );
          return s;
        }),
    ),
  );
  await sim.close();

  // One shard at a time on one worker: each shard's cost with the machine otherwise idle (but for other jobs).
  const alone = await serveAll(label, 'alone', simulated, 1, true);
  await alone.pool.close();
  checkSum(label, addShardSums(d, alone.served), simulated);

  // All shards over the workers at once: the round's wall time here. The coordinator's add loop is warmed first,
  // as it would be in a long-lived coordinator.
  for (let i = 0; i < 3; i++) addShardSums(d, alone.served);
  const par = await serveAll(label, `${workers} in parallel`, simulated, workers, false);
  const addStart = performance.now();
  const total = addShardSums(d, par.served);
  const end = performance.now();
  await par.pool.close();
  checkSum(label, total, simulated);

  const coordinatorAddMs = end - addStart;
  const aloneWall = alone.served.map((r) => r.wallMs);
  return {
    n,
    d,
    dropout,
    shardSize,
    shards: shards.length,
    workers,
    overflow: overflow.length,
    shardDevices: shards.map((s) => s.length),
    k: simulated.map((s) => s.record.config.neighbours),
    t: simulated.map((s) => s.record.config.threshold),
    survivors: par.served.reduce((a, r) => a + r.survivors, 0),
    alone: {
      wallMs: stats(aloneWall),
      unmaskStepWallMs: stats(alone.served.map((r) => r.finishWallMs)),
      processCpuMs: stats(alone.served.map((r) => r.processCpuMs)),
    },
    parallel: {
      wallMs: stats(par.served.map((r) => r.wallMs)),
      threadCpuMs: stats(par.served.map((r) => r.threadCpuMs)),
    },
    coordinatorAddMs,
    roundWallMs: end - par.start,
    projectedOneCorePerShardMs: Math.max(...aloneWall) + coordinatorAddMs,
  };
}

async function main() {
  const list = (env: string | undefined, dflt: number[]) => (env ? env.split(',').map(Number) : dflt);
  const NS = list(process.env.BENCH_N, [500, 1000]);
  const DS = list(process.env.BENCH_D, [100_000]);
  const DROP = Number(process.env.BENCH_DROP ?? 0.3);
  const SHARD = Number(process.env.BENCH_SHARD ?? 100);
  const WORKERS = Number(process.env.BENCH_WORKERS ?? availableParallelism());
  console.log(
    `Sharded SecAgg+ benchmark — ${availableParallelism()} CPU(s) available, ${WORKERS} worker(s), load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const rows: Row[] = [];
  for (const d of DS)
    for (const n of NS) {
      const r = await runOne(n, d, DROP, SHARD, WORKERS);
      rows.push(r);
      const ms = (x: Stats) => `median ${x.median.toFixed(0)} ms, max ${x.max.toFixed(0)} ms`;
      console.log(
        `${r.n} devices, d = ${r.d}, ${r.dropout * 100} % dropout, shard size ${r.shardSize}: ${r.shards} shards of ${Math.min(...r.shardDevices)}–${Math.max(...r.shardDevices)} devices (overflow ${r.overflow}), k = ${Math.min(...r.k)}–${Math.max(...r.k)}, ${r.survivors} survivors`,
      );
      console.log(
        `  per-shard server, alone on one worker: wall ${ms(r.alone.wallMs)} (unmask step ${ms(r.alone.unmaskStepWallMs)})`,
      );
      console.log(
        `                                         process CPU, all threads (process.cpuUsage) ${ms(r.alone.processCpuMs)}`,
      );
      console.log(
        `  per-shard server, ${r.workers} in parallel:   wall ${ms(r.parallel.wallMs)}; worker-thread CPU (process.threadCpuUsage, without Web Crypto's threadpool jobs) ${ms(r.parallel.threadCpuMs)}`,
      );
      console.log(`  coordinator add of ${r.shards} shard sums: ${r.coordinatorAddMs.toFixed(2)} ms`);
      console.log(
        `  round server wall time here: ${r.roundWallMs.toFixed(0)} ms (${r.shards} shards over ${r.workers} worker(s))`,
      );
      const target =
        r.n === 500 && r.d === 100_000 && r.dropout === 0.3
          ? ` — target ≤ 2,000 ms: ${r.projectedOneCorePerShardMs <= 2000 ? 'met' : 'MISSED'}`
          : '';
      console.log(
        `  projected wall, one core per shard: ${r.projectedOneCorePerShardMs.toFixed(0)} ms (max alone shard wall + coordinator add)${target}`,
      );
      console.log('  combined sum = exact sum of the survivors’ inputs (both passes): ok');
    }
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(
    join(import.meta.dirname, 'results/secagg-sharded.json'),
    JSON.stringify(
      { date: new Date().toISOString(), cpus: availableParallelism(), loadAverage: loadavg(), rows },
      null,
      2,
    ),
  );
}

// Last, so that everything above is defined when either side starts.
if (!isMainThread) {
  parentPort!.on('message', async (job: Job) => {
    try {
      if (job.kind === 'simulate') {
        const s = await simulate(job);
        parentPort!.postMessage({ ok: s }, [...buffers(s.record.stages.flat()), s.expected.buffer as ArrayBuffer]);
      } else if (job.kind === 'serve') {
        const s = await serve(job.record);
        parentPort!.postMessage({ ok: s }, [s.sum.buffer as ArrayBuffer]);
      } else {
        // JIT and Web Crypto warm-up on a tiny shard, so the first timed shard is not also the first run.
        for (let i = 0; i < 3; i++)
          await serve(
            (
              await simulate({
                kind: 'simulate',
                roundId: `warm-up-${i}`,
                devices: Array.from({ length: 12 }, (_, j) => `warm-up-${j}`),
                d: 1000,
                dropout: 0.3,
              })
            ).record,
          );
        parentPort!.postMessage({ ok: true });
      }
    } catch (e) {
      parentPort!.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  });
} else {
  await main();
}
