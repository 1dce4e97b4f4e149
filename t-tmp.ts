import { useNodeWasm } from './client-sdk/training/node-backend.ts';
import { Trainer } from './client-sdk/training/trainer.ts';
import { loadMnist } from './models/data/mnist.ts';
import { mnistMlp } from './models/specs.ts';
useNodeWasm();
const { train, test } = loadMnist();
for (const priv of [undefined, { l2NormClip: 1, epsilon: 2, delta: 1e-5 }]) {
  const t = await Trainer.create({ spec: mnistMlp });
  const r = await t.fit(train, { epochs: 5, batchSize: 256, learningRate: priv ? 0.1 : 0.001, optimizer: priv ? 'momentum' : 'adam', privacy: priv });
  console.log(t.backend, priv ? 'dp' : 'plain', r.examplesPerSecond.toFixed(0), 'ex/s', 'eps', r.epsilon?.toFixed(2), 'sigma', r.noiseMultiplier?.toFixed(2), t.evaluate(test));
  t.dispose();
}
