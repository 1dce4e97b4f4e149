/**
 * The "finetune" scenario of `npm run simulate`: what a deployment looks like when federated learning has to earn
 * its place. The served model is pretrained on a public split no device holds (the first 2,000 of the 8,000 training
 * digits); 100 devices hold the other 6,000, label-skewed by a Dirichlet(α) draw per class (or the pathological
 * two-digit split); the 2,000 held-out digits are only ever evaluated on. With `--data spam` the same for spam-bow
 * on SpamAssassin: pretrained on the oldest 20 % of the training mail, devices holding mailboxes of the rest. The baselines a reviewer asks for are
 * trained in the same run, from the same pretrained weights, on the same data, and evaluated the same way as the
 * federated rounds — the int8 model (quantizeModel, as the task publishes it) run by onnxruntime-web's WASM, the
 * runtime the edge runs:
 *  - the base model (public pretraining only);
 *  - central training on the pooled device data (the non-private upper bound);
 *  - central DP-SGD on the pooled data at the run's ε (example-level, δ = 1e-5);
 *  - local-only: each device trains alone on its own data (with the run's per-device DP, if any); mean accuracy.
 */
import * as ort from 'onnxruntime-web';
import { Trainer } from '../client-sdk/training/trainer.ts';
import { accuracy } from '../federated/model/accuracy.ts';
import type { ModelSpec, NamedWeight } from '../federated/model/model-spec.ts';
import { exportOnnx } from '../federated/model/onnx-export.ts';
import { quantizeModel } from '../federated/model/quantize.ts';
import { dirichletShards } from '../models/data/dirichlet-split.ts';
import { type LabelledSet, loadMnist, slice } from '../models/data/mnist.ts';
import { nonIidShards } from '../models/data/non-iid.ts';
import { loadSpamAssassin } from '../models/data/spam.ts';
import { hashTexts } from '../federated/model/text-features.ts';
import { mnistMlp, spamBow } from '../models/specs.ts';

export const PUBLIC_EXAMPLES = 2000;
/** Share of the SpamAssassin training mail, the oldest, that is public (the rest is the devices' mailboxes). */
export const PUBLIC_MAIL_SHARE = 0.2;

export interface FinetuneData {
  dataset: 'mnist' | 'spam';
  spec: ModelSpec;
  /** What the devices hold, in words. */
  split: string;
  /** Public pretraining data: no device holds it. */
  public: LabelledSet;
  /** All device data pooled (what central training sees). */
  pooled: LabelledSet;
  devices: LabelledSet[];
  test: LabelledSet;
}

export function finetuneData(o: {
  dataset: 'mnist' | 'spam';
  devices: number;
  split: 'dirichlet' | 'pathological';
  alpha: number;
  seed?: number;
}): FinetuneData {
  if (o.dataset === 'spam') return mailboxes(o.devices);
  const { train, test } = loadMnist();
  const pooled = slice(train, PUBLIC_EXAMPLES, train.n);
  const devices =
    o.split === 'dirichlet'
      ? dirichletShards(pooled, o.devices, { alpha: o.alpha, seed: o.seed ?? 1 })
      : nonIidShards(pooled, o.devices, o.seed ?? 1);
  const split = o.split === 'dirichlet' ? `Dirichlet α ${o.alpha} over labels` : 'pathological: 2 digits each';
  return { dataset: 'mnist', spec: mnistMlp, split, public: slice(train, 0, PUBLIC_EXAMPLES), pooled, devices, test };
}

/**
 * SpamAssassin as mailboxes: the training mail in the order it was sent (Date: header); the oldest 20 % is public
 * (it pretrains spam-bow), the rest is cut into `devices` consecutive periods — each device a mailbox of what
 * arrived in its weeks, so devices differ the way mail does over time (campaigns come and go, the spam share moves).
 * Held out: the corpus's fixed 20 % split. Text is featurized with spam-bow's own hashText, as devices do.
 */
function mailboxes(devices: number): FinetuneData {
  const { train, test } = loadSpamAssassin();
  const f = spamBow.features!;
  // Messages without a date (25 of 6,046) go last, in corpus order.
  const order = Array.from({ length: train.n }, (_, i) => i).sort(
    (a, b) => (train.dates[a]! || Infinity) - (train.dates[b]! || Infinity) || a - b,
  );
  const all: LabelledSet = {
    x: hashTexts(
      order.map((i) => train.texts[i]!),
      f,
    ),
    y: Int32Array.from(order, (i) => train.y[i]!),
    n: train.n,
    features: f.buckets,
  };
  const cut = Math.round(train.n * PUBLIC_MAIL_SHARE);
  const pooled = slice(all, cut, all.n);
  const per = pooled.n / devices;
  const boxes = Array.from({ length: devices }, (_, d) =>
    slice(pooled, Math.round(d * per), Math.round((d + 1) * per)),
  );
  const heldOut: LabelledSet = { x: hashTexts(test.texts, f), y: test.y, n: test.n, features: f.buckets };
  return {
    dataset: 'spam',
    spec: spamBow,
    split: `mailboxes: ${devices} consecutive periods of the mail, in the order it was sent`,
    public: slice(all, 0, cut),
    pooled,
    devices: boxes,
    test: heldOut,
  };
}

/** How each dataset's models are trained centrally: the public pretraining, central on the pooled data, central DP. Chosen once by hand. */
export const RECIPES = {
  mnist: {
    pretrain: { epochs: 30, batchSize: 32, learningRate: 0.001, optimizer: 'adam' as const },
    central: { epochs: 10, batchSize: 32, learningRate: 0.0005, optimizer: 'adam' as const },
    centralDp: { epochs: 15, batchSize: 256, learningRate: 0.05, optimizer: 'momentum' as const, l2NormClip: 1 },
  },
  spam: {
    pretrain: { epochs: 8, batchSize: 32, learningRate: 0.001, optimizer: 'adam' as const },
    central: { epochs: 8, batchSize: 32, learningRate: 0.0005, optimizer: 'adam' as const },
    centralDp: { epochs: 15, batchSize: 128, learningRate: 0.05, optimizer: 'momentum' as const, l2NormClip: 1 },
  },
};

/** Held-out accuracy of `weights` as the task would serve them: int8 weight-only, onnxruntime-web (WASM). */
export async function int8Accuracy(spec: ModelSpec, weights: NamedWeight[], test: LabelledSet): Promise<number> {
  const { bytes } = quantizeModel(exportOnnx(spec, weights));
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    extra: { session: { disable_quant_qdq: '1' } },
  });
  try {
    const out = await session.run({
      [spec.inputName]: new ort.Tensor('float32', test.x, [test.n, ...spec.inputShape]),
    });
    return accuracy(out[spec.outputName]!.data as Float32Array, test.y);
  } finally {
    await session.release();
  }
}

export interface CentralRecipe {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'sgd' | 'momentum' | 'adam';
}

/** Trains `weights` on `data` with the Trainer (DP-SGD when `privacy` is given); the trained weights. */
export async function trainCentrally(
  spec: ModelSpec,
  weights: NamedWeight[] | undefined,
  data: LabelledSet,
  r: CentralRecipe,
  privacy?: { l2NormClip: number; epsilon: number; delta: number },
): Promise<{ weights: NamedWeight[]; epsilon?: number | undefined }> {
  const trainer = await Trainer.create({ spec, weights, backend: 'wasm' });
  try {
    const fit = await trainer.fit(data, { ...r, privacy });
    return { weights: trainer.weights(), epsilon: fit.epsilon };
  } finally {
    trainer.dispose();
  }
}

export interface Baselines {
  base: number;
  central: number;
  centralDp: { epsilon: number; accuracy: number };
  localOnly: { mean: number; devices: number };
}

/** The baselines of one run, each evaluated as the served rounds are (int8Accuracy). */
export async function baselines(o: {
  spec: ModelSpec;
  base: NamedWeight[];
  data: FinetuneData;
  central: CentralRecipe;
  centralDp: CentralRecipe & { l2NormClip: number; epsilon: number };
  local: CentralRecipe;
  localPrivacy?: { l2NormClip: number; noiseMultiplier: number; delta: number } | undefined;
  onProgress?: (what: string, done: number, total: number) => void;
}): Promise<Baselines> {
  const { spec, data } = o;
  const base = await int8Accuracy(spec, o.base, data.test);
  o.onProgress?.('central', 0, 1);
  const central = await int8Accuracy(
    spec,
    (await trainCentrally(spec, o.base, data.pooled, o.central)).weights,
    data.test,
  );
  o.onProgress?.('central DP', 0, 1);
  const { l2NormClip, epsilon, ...dpRecipe } = o.centralDp;
  const dp = await trainCentrally(spec, o.base, data.pooled, dpRecipe, { l2NormClip, epsilon, delta: 1e-5 });
  const centralDp = { epsilon: dp.epsilon!, accuracy: await int8Accuracy(spec, dp.weights, data.test) };
  let sum = 0;
  for (let d = 0; d < data.devices.length; d++) {
    o.onProgress?.('local-only', d, data.devices.length);
    const trainer = await Trainer.create({ spec, weights: o.base, backend: 'wasm' });
    await trainer.fit(data.devices[d]!, { ...o.local, privacy: o.localPrivacy });
    const weights = trainer.weights();
    trainer.dispose();
    sum += await int8Accuracy(spec, weights, data.test);
  }
  return { base, central, centralDp, localOnly: { mean: sum / data.devices.length, devices: data.devices.length } };
}
