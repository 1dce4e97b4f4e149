/**
 * npm run simulate — the federated loop end to end: N simulated devices (Participants in this Node process) on the
 * non-IID MNIST split (McMahan et al. 2017: two digit classes per device) against the local edge server, with
 * SecAgg+ and a share of devices dropping out every round. Prints a progress bar per round, the served int8 model's
 * held-out accuracy (2,000 digits, through the OIP endpoint) and ε per round; writes simulate/results/<task>.json.
 *
 *   npm run simulate -- [--url http://127.0.0.1:8787] [--devices 100] [--per-round 20] [--rounds 20]
 *                       [--dropout 0.3] [--dp] [--epsilon 3] [--sigma 2.5] [--init served|random] [--stage-seconds 5]
 *                       [--scenario finetune [--split dirichlet|pathological] [--alpha 0.5] [--distributed-dp]]
 *   npm run simulate -- --devices 1000 --per-round 1000 --shard-size 100 --rounds 2   (sharded rounds: at-scale.ts)
 * --init served (default): the task starts from the fp32 weights of the bundled mnist-mlp the edge serves — the
 * realistic case of devices fine-tuning a deployed model; --init random: from freshly initialised weights.
 * --scenario finetune (finetune-scenario.ts): the served model is pretrained on 2,000 public digits no device holds,
 * 100 devices hold the other 6,000 (Dirichlet α = 0.5 over labels), and the run also trains its baselines — central,
 * central DP at the same ε, local-only — evaluated exactly as the rounds are; --distributed-dp adds client-level
 * DDGauss noise (the accountant's client ε is printed).
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
import { checkSimulation, runSimulation, servedAccuracy } from './simulation.ts';
import { type Baselines, RECIPES, baselines, finetuneData, trainCentrally } from './finetune-scenario.ts';
import { writePng } from './svg-to-png.ts';
import { EdgeClient } from '../client-sdk/edge/edge-client.ts';
import type { NamedWeight } from '../federated/model/model-spec.ts';
import { exportOnnx } from '../federated/model/onnx-export.ts';
import { quantizeModel } from '../federated/model/quantize.ts';

/** A device alone: the federated run's local recipe, for as many epochs as it would be worth training ~60 examples. */
const LOCAL_EPOCHS = 10;

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' }, devices: { type: 'string', default: '100' }, 'per-round': { type: 'string' },
    rounds: { type: 'string', default: '20' }, dropout: { type: 'string', default: '0.3' }, dp: { type: 'boolean', default: false },
    epsilon: { type: 'string', default: '3' }, sigma: { type: 'string', default: '2.5' }, 'stage-seconds': { type: 'string' }, task: { type: 'string' },
    init: { type: 'string', default: 'served' },
    scenario: { type: 'string', default: 'served' }, split: { type: 'string', default: 'dirichlet' }, alpha: { type: 'string', default: '0.5' },
    'shard-size': { type: 'string' }, threads: { type: 'string' },
    'distributed-dp': { type: 'boolean', default: false }, 'local-epochs': { type: 'string' }, lr: { type: 'string' }, optimizer: { type: 'string' }, server: { type: 'string' }, 'server-lr': { type: 'string' }, 'dd-clip': { type: 'string', default: '0.5' }, 'dd-sigma': { type: 'string', default: '0.5' }, data: { type: 'string', default: 'mnist' },
  },
});
if (a['shard-size'] !== undefined) {
  // Sharded rounds at scale (at-scale.ts): devices over worker threads, shards and server memory per round.
  const { defaultThreads, runAtScale } = await import('./at-scale.ts');
  await runAtScale({
    devices: Number(a.devices), perRound: Number(a['per-round'] ?? a.devices), shardSize: Number(a['shard-size']), rounds: Number(a.rounds), dropout: Number(a.dropout),
    stageSeconds: Number(a['stage-seconds'] ?? 30), threads: Number(a.threads ?? defaultThreads()), url: a.url,
  });
  process.exit(0);
}
useNodeWasm();
await tf.setBackend('wasm');
// The finetune scenario asks every device each round (cross-device FL at full participation, as Hsu et al.'s
// α = 0.5 runs do); 30 % of them still drop out. The served scenario samples 20.
// One process simulates every device: at 100 devices a round, each masks its 203,531 words against ~99
// neighbours, and they all finish together, so a stage must wait for the slowest (a real device masks alone).
const stageSeconds = Number(a['stage-seconds'] ?? (a.scenario === 'finetune' ? 30 : 5));
const devices = Number(a.devices), perRound = Number(a['per-round'] ?? (a.scenario === 'finetune' ? a.devices : 20)), rounds = Number(a.rounds), dropout = Number(a.dropout);
try {
  checkSimulation({ devicesPerRound: perRound, dropout });
} catch (e) {
  console.error(`npm run simulate: ${(e as Error).message}`);
  process.exit(2);
}
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
const task = a.task ?? `${a.data}-fl-${Date.now().toString(36)}`;
const { train, test } = loadMnist();
if (a.init !== 'served' && a.init !== 'random') throw new Error(`--init must be 'served' or 'random', got '${a.init}'`);
if (a.scenario !== 'served' && a.scenario !== 'finetune') throw new Error(`--scenario must be 'served' or 'finetune', got '${a.scenario}'`);
if (a.split !== 'dirichlet' && a.split !== 'pathological') throw new Error(`--split must be 'dirichlet' or 'pathological', got '${a.split}'`);
if (a.data !== 'mnist' && a.data !== 'spam') throw new Error(`--data must be 'mnist' or 'spam', got '${a.data}'`);
if (a.data === 'spam' && a.scenario !== 'finetune') throw new Error('--data spam runs with --scenario finetune');
const finetune = a.scenario === 'finetune' ? finetuneData({ dataset: a.data, devices, split: a.split, alpha: Number(a.alpha) }) : undefined;
const spec = finetune?.spec ?? mnistMlp;
const glorot = () => {
  const model = buildTfjsModel(spec, 7);
  const w = readTfjsWeights(spec, model);
  model.dispose();
  return w;
};
let weights: NamedWeight[];
if (finetune) {
  // Public pretraining: the model the edge serves before any device takes part.
  process.stdout.write(`pretraining ${spec.name} on the ${finetune.public.n} public examples… `);
  weights = (await trainCentrally(spec, glorot(), finetune.public, RECIPES[finetune.dataset].pretrain)).weights;
  console.log('done');
} else {
  weights = a.init === 'served' ? importOnnxWeights(mnistMlp, readFileSync(join(import.meta.dirname, '../models/mnist-mlp/model.fp32.onnx'))) : glorot();
}
const deviceData = finetune?.devices ?? nonIidShards(train, devices);
const test_ = finetune?.test ?? test;
// σ 2.5: a device can train in 8 rounds (16 steps each at q = 1/8) within ε 3 at δ 1e-5 (RDP accountant).
const privacy = a.dp ? { l2NormClip: 1, noiseMultiplier: Number(a.sigma), delta: 1e-5, epsilon: Number(a.epsilon) } : undefined;
// Client-level DP (DDGauss, Kairouz et al. 2021): each device's whole update clipped to L2 `clip` and noised so the
// sum carries noise of std σ·clip per coordinate; the accountant's client ε over the run is printed.
const distributedDp = a['distributed-dp'] ? { clip: Number(a['dd-clip']), noiseMultiplier: Number(a['dd-sigma']), delta: 1e-5 } : undefined;
const split = finetune?.split ?? 'non-IID, 2 digits each';
const from = finetune ? `the ${spec.name} pretrained on ${finetune.public.n} public examples` : a.init === 'served' ? 'the served mnist-mlp' : 'random weights';
console.log(`task ${task}: ${devices} devices (${split}), ${perRound} per round, ${rounds} rounds, ${dropout * 100}% dropping out, SecAgg+ on, from ${from}, ${privacy ? `DP-SGD on each device (σ ${privacy.noiseMultiplier}, budget ε ${privacy.epsilon})` : 'no example-level DP'}${distributedDp ? `, client-level DDGauss (σ ${distributedDp.noiseMultiplier}, clip ${distributedDp.clip})` : ''}`);
// Fine-tuning the served model (already trained on the devices' digits) wants small local steps and a plain average;
// from random weights or a model pretrained on little public data, longer local training and server momentum
// (FedAvgM, Hsu et al. 2019) make up for the non-IID split. --local-epochs, --lr, --optimizer, --server, --server-lr override.
const defaults = a.init === 'served' && !finetune
  ? { training: { epochs: 2, batchSize: 10, learningRate: 0.02, optimizer: 'sgd' as const }, serverOptimizer: { kind: 'fedavg' as const, learningRate: 1 } }
  : finetune?.dataset === 'mnist'
    // From a model pretrained on little public data, on label-skewed devices: one short local epoch of plain SGD
    // (little client drift) and server momentum (FedAvgM, Hsu et al. 2019) to carry the average across rounds.
    // In a FedAvg proxy sweep (same data and Trainer, no SecAgg; 20 rounds, all devices asked) this reached the
    // central baseline (95.2 % vs 95.25 %); local Adam for 5 epochs with a plain average stopped at 93.6 %, 1 epoch
    // of SGD at lr 0.05 at 94.0 %, FedAdam at 94.3 %.
    ? { training: { epochs: 1, batchSize: 10, learningRate: 0.1, optimizer: 'sgd' as const }, serverOptimizer: { kind: 'fedavgm' as const, learningRate: 1, momentum: 0.9 } }
    : finetune
      // spam-bow (a bag-of-words softmax): local Adam steps and a plain average moved it most in a short sweep.
      ? { training: { epochs: 5, batchSize: 10, learningRate: 0.001, optimizer: 'adam' as const }, serverOptimizer: { kind: 'fedavg' as const, learningRate: 1 } }
      : { training: { epochs: 5, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' as const }, serverOptimizer: { kind: 'fedavgm' as const, learningRate: 1, momentum: 0.9 } };
const server_ = (a.server ?? defaults.serverOptimizer.kind) as 'fedavg' | 'fedavgm' | 'fedadam';
if (a.optimizer && !['sgd', 'momentum', 'adam'].includes(a.optimizer)) throw new Error(`--optimizer must be sgd, momentum or adam, got '${a.optimizer}'`);
if (!['fedavg', 'fedavgm', 'fedadam'].includes(server_)) throw new Error(`--server must be fedavg, fedavgm or fedadam, got '${server_}'`);
const recipe = {
  training: { ...defaults.training, ...(a['local-epochs'] && { epochs: Number(a['local-epochs']) }), ...(a.lr && { learningRate: Number(a.lr) }), ...(a.optimizer && { optimizer: a.optimizer }) } as { epochs: number; batchSize: number; learningRate: number; optimizer: 'sgd' | 'momentum' | 'adam' },
  serverOptimizer: { ...defaults.serverOptimizer, kind: server_, ...(a['server-lr'] && { learningRate: Number(a['server-lr']) }) },
};
console.log(`local training: ${recipe.training.epochs} epochs, batch ${recipe.training.batchSize}, lr ${recipe.training.learningRate} (${recipe.training.optimizer}); server: ${recipe.serverOptimizer.kind}, lr ${recipe.serverOptimizer.learningRate}`);
let before = NaN;
if (finetune) {
  // The base is served like any model, and measured through the same OIP endpoint the rounds are.
  const admin = new EdgeClient({ url, adminToken: process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token' });
  await admin.uploadModel(`${task}-base`, '1', quantizeModel(exportOnnx(spec, weights)).bytes);
  before = await servedAccuracy(url, `${task}-base`, '1', test_);
  console.log(`before: the pretrained model, served int8, scores ${(before * 100).toFixed(2)}% on the ${test_.n} held-out examples`);
} else if (a.init === 'served') {
  before = await servedAccuracy(url, 'mnist-mlp', undefined, test);
  console.log(`before: the served int8 mnist-mlp scores ${(before * 100).toFixed(2)}% on the 2,000 held-out digits`);
}
const started = performance.now();
const rows: { round: number; status: string; accuracy: number; epsilon?: number; dropouts: number; seconds: number }[] = [];
let bar = progressBar('round  1', perRound);
try {
  const result = await runSimulation({
    url, adminToken: process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token', task, spec, weights,
    devices: deviceData, test: test_, rounds, devicesPerRound: perRound, dropout, stageSeconds,
    ...recipe, privacy, distributedDp, update: { clip: 1, maxExamples: 80 },
    onDevice: (round, done, total) => bar.update(done, `${done}/${total} devices`),
    onRound: ({ round, record, accuracy, seconds }) => {
      bar.done(`${record.status} ${record.version ?? ''}${record.status === 'abandoned' ? ` — ${record.reason}` : ''}  accuracy ${(accuracy * 100).toFixed(2)}%  ε ${(record.epsilon ?? 0).toFixed(2)}  dropouts ${record.dropouts}  ‖Δ‖ ${record.updateNorm?.toFixed(3) ?? '-'}  ${seconds.toFixed(1)} s`);
      rows.push({ ...record, accuracy, seconds });
      if (round < rounds) bar = progressBar(`round ${String(round + 1).padStart(2)}`, perRound);
    },
  });
  const final = result.accuracy.at(-1)!;
  const minutes = (performance.now() - started) / 60000;
  const published = rows.filter((r) => r.status === 'published').length;
  console.log(`\n${published} of ${rounds} rounds published${published < rounds ? ` (${rows.filter((r) => r.status !== 'published').map((r) => `round ${r.round}: ${r.status}`).join(', ')})` : ''}`);
  console.log(`served int8 model ${task}@${result.status.publishedVersions.at(-1)}: ${(final * 100).toFixed(2)}% on ${test_.n} held-out examples (OIP)${Number.isFinite(before) ? `, ${(before * 100).toFixed(2)}% before` : ''}; ${minutes.toFixed(1)} min for ${rounds} rounds; max device ε ${(result.status.privacy?.maxSpent ?? 0).toFixed(2)}`);
  const clientEpsilon = result.status.distributedDp?.epsilon;
  if (clientEpsilon !== undefined) console.log(`client-level ε (DDGauss, the accountant's, δ ${distributedDp!.delta}): ${clientEpsilon.toFixed(2)}`);
  let measured: Baselines | undefined;
  if (finetune) {
    console.log('\nbaselines, same data, same start, same evaluation (int8, onnxruntime-web):');
    let b = progressBar('baselines', devices + 2);
    let steps = 0;
    measured = await baselines({
      spec, base: weights, data: finetune, central: RECIPES[finetune.dataset].central, centralDp: { ...RECIPES[finetune.dataset].centralDp, epsilon: privacy?.epsilon ?? Number(a.epsilon) },
      local: { ...recipe.training, epochs: LOCAL_EPOCHS }, localPrivacy: privacy,
      onProgress: (what) => b.update(++steps, what),
    });
    b.done(`done`);
    const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
    console.log(`  base (public pretraining only) ${pct(measured.base)}   central on the pooled device data ${pct(measured.central)}   central DP-SGD ε ${measured.centralDp.epsilon.toFixed(2)} ${pct(measured.centralDp.accuracy)}   local-only (mean of ${devices} devices${privacy ? ', same per-device DP' : ''}) ${pct(measured.localOnly.mean)}`);
    console.log(`\naccuracy before ${pct(before)} → after ${pct(final)} (central ${pct(measured.central)}, central DP ${pct(measured.centralDp.accuracy)}, local-only ${pct(measured.localOnly.mean)})`);
  }
  const memory = server ? peakRssOfGroup(server.child.pid!) : [];
  if (memory.length) console.log(`server peak RSS: ${memory.map((m) => `${m.command} ${m.peakRssMiB.toFixed(0)} MiB`).join(', ')}`);
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${task}.json`), JSON.stringify({ task, scenario: a.scenario, split, devices, perRound, rounds, dropout, init: a.init, privacy, distributedDp, clientEpsilon, minutes, before, baselines: measured, memory, rounds_: rows, status: result.status }, null, 2));
  // The baselines as flat lines across the rounds, so the curve is read against them.
  const flat = (label: string, color: string, y: number) => ({ label, color, dashed: true, points: [{ x: 0, y: 100 * y }, { x: rounds, y: 100 * y }] });
  const svg = lineChartSvg({
    title: `${task}: served int8 accuracy per round (${devices} devices, ${perRound}/round, ${dropout * 100}% dropout${privacy ? `, DP ε≤${privacy.epsilon}` : ''}${clientEpsilon !== undefined ? `, client ε ${clientEpsilon.toFixed(1)}` : ''})`,
    xLabel: Number.isFinite(before) ? 'round (0: the served model before)' : 'round', yLabel: 'held-out accuracy (%)',
    series: [
      { label: 'federated (served int8 model)', color: '#1f77b4', points: [...(Number.isFinite(before) ? [{ x: 0, y: 100 * before }] : []), ...rows.map((r) => ({ x: r.round, y: 100 * r.accuracy }))] },
      ...(measured ? [
        flat('central (pooled device data)', '#2ca02c', measured.central),
        flat(`central DP-SGD (ε ${measured.centralDp.epsilon.toFixed(1)})`, '#ff7f0e', measured.centralDp.accuracy),
        flat('local-only (mean)', '#d62728', measured.localOnly.mean),
        flat('base (public pretraining)', '#7f7f7f', measured.base),
      ] : []),
    ],
  });
  writeFileSync(join(dir, `${task}.svg`), svg);
  const png = await writePng(svg, join(dir, `${task}.png`));
  console.log(`results: simulate/results/${task}.json, chart: simulate/results/${task}.svg${png ? ` and .png` : ''}`);
} finally {
  await server?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
}
