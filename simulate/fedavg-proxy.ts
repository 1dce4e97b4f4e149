/**
 * A fast stand-in for `npm run simulate -- --scenario finetune` when choosing a recipe: the same data (finetuneData),
 * the same public pretraining, the same Trainer on every device and the same server optimizers
 * (federated/aggregation/server-optimizer.ts), scored the same way (int8Accuracy) — but no server, no SecAgg+ and
 * no fixed point: the round's update is the exact example-weighted mean of the survivors' updates. A 20-round
 * recipe takes ~2 minutes here instead of ~45; what it finds is then measured with the real loop. With --sigma
 * every device runs DP-SGD at that σ each round, with no ledger (the real loop stops a device whose budget is spent).
 *
 *   node simulate/fedavg-proxy.ts --per-round 100 --local-epochs 1 --optimizer sgd --lr 0.1 --server fedavgm
 *   node simulate/fedavg-proxy.ts --sigma 2.5 --lr 0.02 --trainable 1     (per-device DP-SGD; only the head trains)
 */
import { parseArgs } from 'node:util';
import { useNodeWasm } from '../client-sdk/training/node-backend.ts';
import { Trainer } from '../client-sdk/training/trainer.ts';
import {
  type ServerOptimizerConfig,
  type ServerOptimizerState,
  serverStep,
} from '../federated/aggregation/server-optimizer.ts';
import { flattenWeights, unflattenWeights } from '../federated/model/flat-weights.ts';
import { RECIPES, finetuneData, int8Accuracy, trainCentrally } from './finetune-scenario.ts';

const { values: a } = parseArgs({
  options: {
    devices: { type: 'string', default: '100' },
    'per-round': { type: 'string', default: '100' },
    rounds: { type: 'string', default: '20' },
    dropout: { type: 'string', default: '0.3' },
    'local-epochs': { type: 'string', default: '1' },
    'batch-size': { type: 'string', default: '10' },
    lr: { type: 'string', default: '0.1' },
    optimizer: { type: 'string', default: 'sgd' },
    server: { type: 'string', default: 'fedavgm' },
    'server-lr': { type: 'string', default: '1' },
    sigma: { type: 'string' },
    trainable: { type: 'string' },
    alpha: { type: 'string', default: '0.5' },
  },
});
useNodeWasm();
const n = (k: keyof typeof a) => Number(a[k]);
const data = finetuneData({ dataset: 'mnist', devices: n('devices'), split: 'dirichlet', alpha: n('alpha') });
const spec = data.spec;
const base = (await trainCentrally(spec, undefined, data.public, RECIPES.mnist.pretrain)).weights;
console.log(`base ${(100 * (await int8Accuracy(spec, base, data.test))).toFixed(2)}%`);
const weights = flattenWeights(spec, base);
const server = { kind: a.server, learningRate: n('server-lr') } as ServerOptimizerConfig;
let state: ServerOptimizerState = {};
for (let round = 1; round <= n('rounds'); round++) {
  // This round's devices, a share of them gone before sending (as in the real loop, whichever stage they leave at).
  const order = [...data.devices.keys()].sort(() => Math.random() - 0.5).slice(0, n('per-round'));
  const survivors = order.slice(Math.round(n('dropout') * order.length));
  const sum = new Float64Array(weights.length);
  let examples = 0;
  for (const d of survivors) {
    const set = data.devices[d]!;
    const trainer = await Trainer.create({
      spec,
      weights: unflattenWeights(spec, weights),
      backend: 'wasm',
      ...(a.trainable && { trainableLayers: n('trainable') }),
    });
    await trainer.fit(set, {
      epochs: n('local-epochs'),
      batchSize: n('batch-size'),
      learningRate: n('lr'),
      optimizer: a.optimizer as 'sgd' | 'momentum' | 'adam',
      ...(a.sigma && { privacy: { l2NormClip: 1, noiseMultiplier: n('sigma'), delta: 1e-5 } }),
    });
    const local = flattenWeights(spec, trainer.weights());
    trainer.dispose();
    for (let i = 0; i < weights.length; i++) sum[i]! += (local[i]! - weights[i]!) * set.n;
    examples += set.n;
  }
  const mean = Float32Array.from(sum, (v) => v / examples);
  state = serverStep(server, weights, mean, state);
  console.log(
    `round ${round}: ${survivors.length} devices, ${(100 * (await int8Accuracy(spec, unflattenWeights(spec, weights), data.test))).toFixed(2)}%`,
  );
}
