/**
 * npm run simulate — the federated loop end to end: N simulated devices (Participants in this Node process) on the
 * non-IID MNIST split (McMahan et al. 2017: two digit classes per device) against the local edge server, with
 * SecAgg+ and a share of devices dropping out every round. Prints a progress bar per round, the served int8 model's
 * held-out accuracy (2,000 digits, through the OIP endpoint) and ε per round; writes simulate/results/<task>.json.
 *
 *   npm run simulate -- [--url http://127.0.0.1:8787] [--devices 100] [--per-round 20] [--rounds 20]
 *                       [--dropout 0.3] [--dp] [--epsilon 3] [--from-served]
 * Without --url it starts its own local server (the one `npm start` runs) on a free port and stops it at the end.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { useNodeWasm } from '../client-sdk/training/node-backend.ts';
import { buildTfjsModel, readTfjsWeights } from '../federated/model/tfjs-model.ts';
import { loadMnist } from '../models/data/mnist.ts';
import { nonIidShards } from '../models/data/non-iid.ts';
import { progressBar } from '../models/progress.ts';
import { mnistMlp } from '../models/specs.ts';
import { type LocalServer, startLocalServer } from '../test/e2e/local-server.ts';
import { runSimulation } from './simulation.ts';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' }, devices: { type: 'string', default: '100' }, 'per-round': { type: 'string', default: '20' },
    rounds: { type: 'string', default: '20' }, dropout: { type: 'string', default: '0.3' }, dp: { type: 'boolean', default: false },
    epsilon: { type: 'string', default: '3' }, 'stage-seconds': { type: 'string', default: '5' }, task: { type: 'string' },
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
  server = await startLocalServer({ port: 20000 + Math.floor(Math.random() * 20000), persistTo: state });
  url = server.url;
  console.log(`ready at ${url} (${(server.readyAfterMs / 1000).toFixed(1)} s)`);
}
const task = a.task ?? `mnist-fl-${Date.now().toString(36)}`;
const { train, test } = loadMnist();
const model = buildTfjsModel(mnistMlp, 7);
const weights = readTfjsWeights(mnistMlp, model);
model.dispose();
const privacy = a.dp ? { l2NormClip: 1, noiseMultiplier: 1.0, delta: 1e-5, epsilon: Number(a.epsilon) } : undefined;
console.log(`task ${task}: ${devices} devices (non-IID, 2 digits each), ${perRound} per round, ${rounds} rounds, ${dropout * 100}% dropping out, SecAgg+ on, ${privacy ? `DP-SGD on each device (σ ${privacy.noiseMultiplier}, budget ε ${privacy.epsilon})` : 'no DP'}`);
const started = performance.now();
const rows: unknown[] = [];
let bar = progressBar('round  1', perRound);
try {
  const result = await runSimulation({
    url, adminToken: process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token', task, spec: mnistMlp, weights,
    devices: nonIidShards(train, devices), test, rounds, devicesPerRound: perRound, dropout, stageSeconds: Number(a['stage-seconds']),
    training: { epochs: 5, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' }, privacy,
    serverOptimizer: { kind: 'fedavgm', learningRate: 1, momentum: 0.9 }, update: { clip: 1, maxExamples: 80 },
    onDevice: (round, done, total) => bar.update(done, `${done}/${total} devices`),
    onRound: ({ round, record, accuracy, seconds }) => {
      bar.done(`${record.status} ${record.version ?? ''}  accuracy ${(accuracy * 100).toFixed(2)}%  ε ${(record.epsilon ?? 0).toFixed(2)}  dropouts ${record.dropouts}  ‖Δ‖ ${record.updateNorm?.toFixed(3) ?? '-'}  ${seconds.toFixed(1)} s`);
      rows.push({ round, ...record, accuracy, seconds });
      if (round < rounds) bar = progressBar(`round ${String(round + 1).padStart(2)}`, perRound);
    },
  });
  const final = result.accuracy.at(-1)!;
  const minutes = (performance.now() - started) / 60000;
  console.log(`\nserved int8 model ${task}@${result.status.publishedVersions.at(-1)}: ${(final * 100).toFixed(2)}% on 2,000 held-out digits (OIP); ${minutes.toFixed(1)} min for ${rounds} rounds; max device ε ${(result.status.privacy?.maxSpent ?? 0).toFixed(2)}`);
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(join(import.meta.dirname, `results/${task}.json`), JSON.stringify({ task, devices, perRound, rounds, dropout, privacy, minutes, rounds_: rows, status: result.status }, null, 2));
} finally {
  await server?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
}
