/**
 * npm run bench:secagg — SecAgg+ client and server cost, in one process pinned to one core (the npm script runs
 * it under `taskset -c 0`): for n devices, d words, a dropout fraction (devices that vanish after sharing keys, the
 * costliest moment — the server must then reconstruct their mask keys and remove their pairwise masks). k and t
 * come from secAggParameters (abort probability ≤ 1e-3 at that dropout). Messages go through the binary wire
 * format, so bytes are real. Every round's sum is checked against the exact sum. Reference: Bonawitz et al. 2017
 * (§7, n = 500, d = 10^5, 30 % dropout): ~849 ms per client, ~143 s on the server.
 *   BENCH_N=100,500 BENCH_D=10000 BENCH_DROP=0.3 npm run bench:secagg   (subsets)
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import {
  type ClientState,
  type DeviceIdentity,
  clientAdvertiseKeys,
  clientMaskedInput,
  clientShareKeys,
  clientUnmask,
  createIdentity,
} from '../federated/secagg/client.ts';
import type { KeysBroadcast, SharesDelivery, UnmaskRequest } from '../federated/secagg/messages.ts';
import { secAggParameters } from '../federated/secagg/parameters.ts';
import { randomBytes, randomWords } from '../federated/random.ts';
import {
  serverCloseAdvertise,
  serverCloseMasked,
  serverCloseShares,
  serverCloseUnmask,
  serverInit,
  serverReceive,
} from '../federated/secagg/server.ts';
import { decodeMessage, encodeMessage } from '../federated/secagg/wire.ts';
import { useNodeKeystream } from '../federated/secagg/node-keystream.ts';

// The server side runs in Node here (as a simulation would); devices in browsers use Web Crypto — same bytes.
useNodeKeystream();

const list = (env: string | undefined, dflt: number[]) => (env ? env.split(',').map(Number) : dflt);
const NS = list(process.env.BENCH_N, [100, 500, 1000]);
const DS = list(process.env.BENCH_D, [10_000, 100_000]);
const DROPS = list(process.env.BENCH_DROP, [0, 0.1, 0.3]);

const keysBroadcastBytes = (b: KeysBroadcast) =>
  b.roster.reduce((n, id) => n + 4 + id.length, 0) + b.neighbours.reduce((n, a) => n + encodeMessage(a).byteLength, 0);
const deliveryBytes = (d: SharesDelivery) =>
  d.ciphertexts.reduce((n, c) => n + 8 + c.from.length + c.data.byteLength, 0);
const requestBytes = (r: UnmaskRequest) => r.survivors.reduce((n, id) => n + 4 + id.length, 0);

async function timed<T>(acc: { ms: number }, f: () => Promise<T> | T): Promise<T> {
  const t = performance.now();
  const out = await f();
  acc.ms += performance.now() - t;
  return out;
}

const identities: DeviceIdentity[] = [];
async function ids(n: number) {
  while (identities.length < n)
    identities.push(await createIdentity(`device-${String(identities.length).padStart(5, '0')}`));
  return identities.slice(0, n);
}

interface Row {
  n: number;
  d: number;
  dropout: number;
  k: number;
  t: number;
  clientMs: number;
  serverMs: number;
  uploadBytes: number;
  uploadRatio: number;
  downloadBytes: number;
}

async function runOne(n: number, d: number, dropout: number): Promise<Row> {
  const { neighbours: k, threshold: t } = secAggParameters({
    devices: n,
    dropoutRate: dropout,
    failureProbability: 1e-3,
  });
  const config = {
    roundId: `bench-${n}-${d}-${dropout}`,
    neighbours: k,
    threshold: t,
    graphSeed: randomBytes(32),
    length: d,
  };
  const devices = await ids(n);
  const server = serverInit(config, Object.fromEntries(devices.map((x) => [x.id, x.publicKey])));
  const serverTime = { ms: 0 };
  const clientTime = new Map(devices.map((x) => [x.id, { ms: 0 }]));
  const up = new Map(devices.map((x) => [x.id, 0]));
  const down = new Map(devices.map((x) => [x.id, 0]));
  const states = new Map<string, ClientState>();
  const send = async (id: string, m: Parameters<typeof encodeMessage>[0]) => {
    const bytes = encodeMessage(m);
    up.set(id, up.get(id)! + bytes.byteLength);
    await timed(serverTime, () => serverReceive(server, decodeMessage(bytes)));
  };
  const progress = (stage: string) =>
    process.stdout.isTTY &&
    process.stdout.write(`\r  n=${n} d=${d} dropout=${dropout * 100}% k=${k} t=${t}: ${stage}\x1b[K`);

  progress('advertise-keys');
  for (const x of devices) {
    const { state, message } = await timed(clientTime.get(x.id)!, () => clientAdvertiseKeys(config, x));
    states.set(x.id, state);
    await send(x.id, message);
  }
  const broadcasts = await timed(serverTime, () => serverCloseAdvertise(server));
  progress('share-keys');
  for (const [id, b] of broadcasts) {
    down.set(id, down.get(id)! + keysBroadcastBytes(b));
    const { state, message } = await timed(clientTime.get(id)!, () => clientShareKeys(states.get(id)!, b));
    states.set(id, state);
    await send(id, message);
  }
  const deliveries = await timed(serverTime, () => serverCloseShares(server));
  // The dropped devices vanish now, after sharing keys and before their input.
  const dropped = new Set(devices.filter((_, i) => i < Math.round(n * dropout)).map((x) => x.id));
  const expected = new Uint32Array(d);
  let done = 0;
  for (const [id, delivery] of deliveries) {
    if (++done % 50 === 0) progress(`masked-input ${done}/${n}`);
    if (dropped.has(id)) continue;
    down.set(id, down.get(id)! + deliveryBytes(delivery));
    const input = randomWords(d);
    for (let i = 0; i < d; i++) expected[i] = (expected[i]! + input[i]!) >>> 0;
    const { state, message } = await timed(clientTime.get(id)!, () =>
      clientMaskedInput(states.get(id)!, delivery, input),
    );
    states.set(id, state);
    await send(id, message);
  }
  const request = await timed(serverTime, () => serverCloseMasked(server));
  progress('unmask');
  for (const id of request.survivors) {
    down.set(id, down.get(id)! + requestBytes(request));
    const { state, message } = await timed(clientTime.get(id)!, () => clientUnmask(states.get(id)!, request));
    states.set(id, state);
    await send(id, message);
  }
  const result = await timed(serverTime, () => serverCloseUnmask(server));
  if (!result.sum.every((v, i) => v === expected[i])) throw new Error(`n=${n} d=${d}: the unmasked sum is wrong`);
  const survivors = request.survivors;
  const mean = (m: Map<string, number | { ms: number }>) =>
    survivors.reduce((s, id) => {
      const v = m.get(id)!;
      return s + (typeof v === 'number' ? v : v.ms);
    }, 0) / survivors.length;
  const uploadBytes = mean(up);
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
  return {
    n,
    d,
    dropout,
    k,
    t,
    clientMs: mean(clientTime),
    serverMs: serverTime.ms,
    uploadBytes,
    uploadRatio: uploadBytes / (4 * d),
    downloadBytes: mean(down),
  };
}

console.log(
  `SecAgg+ benchmark — ${availableParallelism()} CPU(s) available to this process (run under taskset -c 0 for one core)`,
);
console.log(
  `${'n'.padStart(5)} ${'d'.padStart(7)} ${'drop'.padStart(5)} ${'k'.padStart(4)} ${'t'.padStart(4)} ${'client ms'.padStart(10)} ${'server ms'.padStart(10)} ${'upload B'.padStart(10)} ${'/ 4d'.padStart(6)} ${'download B'.padStart(11)}`,
);
const rows: Row[] = [];
for (const d of DS)
  for (const n of NS)
    for (const drop of DROPS) {
      const r = await runOne(n, d, drop);
      rows.push(r);
      console.log(
        `${String(r.n).padStart(5)} ${String(r.d).padStart(7)} ${`${r.dropout * 100}%`.padStart(5)} ${String(r.k).padStart(4)} ${String(r.t).padStart(4)} ${r.clientMs.toFixed(1).padStart(10)} ${r.serverMs.toFixed(0).padStart(10)} ${Math.round(r.uploadBytes).toLocaleString('en-US').padStart(10)} ${r.uploadRatio.toFixed(3).padStart(6)} ${Math.round(r.downloadBytes).toLocaleString('en-US').padStart(11)}`,
      );
    }
const anchor = rows.find((r) => r.n === 500 && r.d === 100_000 && r.dropout === 0.3);
if (anchor) {
  console.log(`\ntargets at n = 500, d = 10^5, 30 % dropout (Bonawitz et al.: 849 ms/client, 143 s server):`);
  console.log(
    `  server ${(anchor.serverMs / 1000).toFixed(2)} s (≤ 2 s), client ${anchor.clientMs.toFixed(0)} ms (≤ 300 ms), upload ${anchor.uploadRatio.toFixed(3)}× of 4·d (≤ 1.1×)`,
  );
}
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(
  join(import.meta.dirname, 'results/secagg.json'),
  JSON.stringify({ date: new Date().toISOString(), rows }, null, 2),
);
