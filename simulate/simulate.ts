/**
 * npm run simulate — the federated loop end to end: N simulated devices (Participants in this Node process) on the
 * non-IID MNIST split (McMahan et al. 2017: two digit classes per device) against the local edge server, with
 * SecAgg+ and a share of devices dropping out every round. Prints a progress bar per round, the served int8 model's
 * held-out accuracy (2,000 digits, through the OIP endpoint) and ε per round; writes simulate/results/<task>.json.
 *
 *   npm run simulate -- [--url http://127.0.0.1:8787] [--devices 100] [--per-round 20] [--rounds 20]
 *                       [--dropout 0.3] [--dp] [--epsilon 3] [--sigma 2.5] [--init served|random] [--stage-seconds 5]
 * --init served (default): the task starts from the fp32 weights of the bundled mnist-mlp the edge serves — the
 * realistic case of devices fine-tuning a deployed model; --init random: from freshly initialised weights.
 * Without --url it starts its own local server (the one `npm start` runs) on a free port, reports the peak resident
 * memory of its processes at the end, and stops it.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { useNodeWasm } from '../client-sdk/training/node-backend.ts';
import { buildTfjsModel, readTfjsWeights } from '../federated/model/tfjs-model.ts';
import { importOnnxWeights } from '../federated/model/onnx-import.ts';
import { loadMnist } from '../models/data/mnist.ts';
import { nonIidShards } from '../models/data/non-iid.ts';
import { progressBar } from '../models/progress.ts';
import { mnistMlp } from '../models/specs.ts';
import { type LocalServer, startLocalServer } from '../test/e2e/local-server.ts';
import { peakRssOfGroup } from './process-memory.ts';
import { lineChartSvg } from './line-chart.ts';
import { runSimulation, servedAccuracy } from './simulation.ts';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' }, devices: { type: 'string', default: '100' }, 'per-round': { type: 'string', default: '20' },
    rounds: { type: 'string', default: '20' }, dropout: { type: 'string', default: '0.3' }, dp: { type: 'boolean', default: false },
    epsilon: { type: 'string', default: '3' }, sigma: { type: 'string', default: '2.5' }, 'stage-seconds': { type: 'string', default: '5' }, task: { type: 'string' },
    init: { type: 'string', default: 'served' },
  },
});
useNodeWasm();
await tf.setBackend('wasm');
const devices = Number(a.devices), perRound = Number(a['per-round']), rounds = Number(a.rounds), dropout = Number(a.dropout);
let server: LocalServer | undefined, state: string | undefined;
let url = a.url;
if (!url) {
  state = mkdtempSync(join(tmpdir(), 'fedge-simulate-'));
  process.stdout.write('starting the local edge server… ');
  // All simulated devices share one address: the edge's per-IP limit (meant for real clients) would treat them as
  // one client, so it is off here; the task's per-device limits stay on.
  server = await startLocalServer({ persistTo: state, vars: { FEDGE_RATE_LIMIT: 'off' } });
  url = server.url;
  console.log(`ready at ${url} (${(server.readyAfterMs / 1000).toFixed(1)} s)`);
}
const task = a.task ?? `mnist-fl-${Date.now().toString(36)}`;
const { train, test } = loadMnist();
if (a.init !== 'served' && a.init !== 'random') throw new Error(`--init must be 'served' or 'random', got '${a.init}'`);
const weights = a.init === 'served'
  ? importOnnxWeights(mnistMlp, readFileSync(join(import.meta.dirname, '../models/mnist-mlp/model.fp32.onnx')))
  : (() => {
    const model = buildTfjsModel(mnistMlp, 7);
    const w = readTfjsWeights(mnistMlp, model);
    model.dispose();
    return w;
  })();
// σ 2.5: a device can train in 8 rounds (16 steps each at q = 1/8) within ε 3 at δ 1e-5 (RDP accountant).
const privacy = a.dp ? { l2NormClip: 1, noiseMultiplier: Number(a.sigma), delta: 1e-5, epsilon: Number(a.epsilon) } : undefined;
console.log(`task ${task}: ${devices} devices (non-IID, 2 digits each), ${perRound} per round, ${rounds} rounds, ${dropout * 100}% dropping out, SecAgg+ on, from ${a.init === 'served' ? 'the served mnist-mlp' : 'random weights'}, ${privacy ? `DP-SGD on each device (σ ${privacy.noiseMultiplier}, budget ε ${privacy.epsilon})` : 'no DP'}`);
// Fine-tuning a served model wants small local steps and a plain average; from random weights, longer local
// training and server momentum (FedAvgM, Hsu et al. 2019) make up for the non-IID split.
const recipe = a.init === 'served'
  ? { training: { epochs: 2, batchSize: 10, learningRate: 0.02, optimizer: 'sgd' as const }, serverOptimizer: { kind: 'fedavg' as const, learningRate: 1 } }
  : { training: { epochs: 5, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' as const }, serverOptimizer: { kind: 'fedavgm' as const, learningRate: 1, momentum: 0.9 } };
const before = a.init === 'served' ? await servedAccuracy(url, 'mnist-mlp', undefined, test) : NaN;
if (a.init === 'served') console.log(`before: the served int8 mnist-mlp scores ${(before * 100).toFixed(2)}% on the 2,000 held-out digits`);
const started = performance.now();
const rows: { round: number; status: string; accuracy: number; epsilon?: number; dropouts: number; seconds: number }[] = [];
let bar = progressBar('round  1', perRound);
try {
  const result = await runSimulation({
    url, adminToken: process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token', task, spec: mnistMlp, weights,
    devices: nonIidShards(train, devices), test, rounds, devicesPerRound: perRound, dropout, stageSeconds: Number(a['stage-seconds']),
    ...recipe, privacy, update: { clip: 1, maxExamples: 80 },
    onDevice: (round, done, total) => bar.update(done, `${done}/${total} devices`),
    onRound: ({ round, record, accuracy, seconds }) => {
      bar.done(`${record.status} ${record.version ?? ''}  accuracy ${(accuracy * 100).toFixed(2)}%  ε ${(record.epsilon ?? 0).toFixed(2)}  dropouts ${record.dropouts}  ‖Δ‖ ${record.updateNorm?.toFixed(3) ?? '-'}  ${seconds.toFixed(1)} s`);
      rows.push({ round, ...record, accuracy, seconds });
      if (round < rounds) bar = progressBar(`round ${String(round + 1).padStart(2)}`, perRound);
    },
  });
  const final = result.accuracy.at(-1)!;
  const minutes = (performance.now() - started) / 60000;
  const published = rows.filter((r) => r.status === 'published').length;
  console.log(`\n${published} of ${rounds} rounds published${published < rounds ? ` (${rows.filter((r) => r.status !== 'published').map((r) => `round ${r.round}: ${r.status}`).join(', ')})` : ''}`);
  console.log(`served int8 model ${task}@${result.status.publishedVersions.at(-1)}: ${(final * 100).toFixed(2)}% on 2,000 held-out digits (OIP)${Number.isFinite(before) ? `, ${(before * 100).toFixed(2)}% before` : ''}; ${minutes.toFixed(1)} min for ${rounds} rounds; max device ε ${(result.status.privacy?.maxSpent ?? 0).toFixed(2)}`);
  const memory = server ? peakRssOfGroup(server.child.pid!) : [];
  if (memory.length) console.log(`server peak RSS: ${memory.map((m) => `${m.command} ${m.peakRssMiB.toFixed(0)} MiB`).join(', ')}`);
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${task}.json`), JSON.stringify({ task, devices, perRound, rounds, dropout, init: a.init, privacy, minutes, before, memory, rounds_: rows, status: result.status }, null, 2));
  writeFileSync(join(dir, `${task}.svg`), lineChartSvg({
    title: `${task}: served int8 accuracy per round (${devices} devices, ${perRound}/round, ${dropout * 100}% dropout${privacy ? `, DP ε≤${privacy.epsilon}` : ''})`,
    xLabel: Number.isFinite(before) ? 'round (0: the served model before)' : 'round', yLabel: 'held-out accuracy',
    series: [{ label: 'served int8 model', color: '#1f77b4', points: [...(Number.isFinite(before) ? [{ x: 0, y: before }] : []), ...rows.map((r) => ({ x: r.round, y: r.accuracy }))] }],
  }));
  console.log(`results: simulate/results/${task}.json, chart: simulate/results/${task}.svg`);
} finally {
  await server?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
}
