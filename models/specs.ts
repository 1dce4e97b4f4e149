/** The default models' specs: what `npm run models` trains and the edge serves. */
import { MODEL_SPEC_FORMAT, type ModelSpec, type NamedWeight, parameterShapes } from '../federated/model/model-spec.ts';
import { gaborFilters, gaborKernel } from './features/gabor.ts';
import { type ScatteringOptions, groupNormalize, scatter, scatteringChannels } from './features/scattering.ts';

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export const mnistMlp: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'mnist-mlp',
  inputShape: [784],
  layers: [
    { type: 'dense', units: 256, activation: 'relu' },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  inputName: 'input',
  outputName: 'probabilities',
  labels: DIGITS,
};

export const mnistCnn: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'mnist-cnn',
  inputShape: [28, 28, 1],
  layers: [
    { type: 'conv2d', filters: 16, kernelSize: 3, padding: 'valid', activation: 'relu' },
    { type: 'maxPool2d', poolSize: 2 },
    { type: 'conv2d', filters: 32, kernelSize: 3, padding: 'valid', activation: 'relu' },
    { type: 'maxPool2d', poolSize: 2 },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.25 },
    { type: 'dense', units: 128, activation: 'relu' },
    { type: 'dropout', rate: 0.25 },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  inputName: 'input',
  outputName: 'probabilities',
  labels: DIGITS,
};

/** SpamAssassin ham/spam over signed hashed words and word pairs (federated/model/text-features.ts). */
export const spamBow: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'spam-bow',
  inputShape: [4096],
  features: { kind: 'hashedBagOfWords', buckets: 4096, ngrams: 2, maxChars: 20_000 },
  layers: [
    { type: 'dense', units: 32, activation: 'relu' },
    { type: 'dense', units: 2, activation: 'softmax' },
  ],
  inputName: 'input',
  outputName: 'probabilities',
  labels: ['ham', 'spam'],
};

/**
 * MNIST for private training: a frozen Gabor filter bank (models/features/gabor.ts; costs no privacy) → ReLU →
 * 4×4 max-pool → one trained softmax layer over the 7·7·33 = 1,617 features. Train with `trainableLayers: 1`
 * from {@link mnistGaborWeights}: DP-SGD then clips by ghost norms and noises 16,180 parameters, not 200,000.
 */
export const MNIST_GABOR_BANK = { orientations: 8, size: 7, sigma: 1.5 };
export const mnistGabor: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'mnist-gabor',
  inputShape: [28, 28, 1],
  layers: [
    {
      type: 'conv2d',
      filters: gaborFilters(MNIST_GABOR_BANK),
      kernelSize: MNIST_GABOR_BANK.size,
      padding: 'same',
      activation: 'relu',
    },
    { type: 'maxPool2d', poolSize: 4 },
    { type: 'flatten' },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  inputName: 'input',
  outputName: 'probabilities',
  labels: DIGITS,
};

/** Starting weights of {@link mnistGabor}: the Gabor bank with zero bias, a zero softmax layer. */
export function mnistGaborWeights(): NamedWeight[] {
  return parameterShapes(mnistGabor).map(({ name, shape }, i) => ({
    name,
    shape,
    values: i === 0 ? gaborKernel(MNIST_GABOR_BANK) : new Float32Array(shape.reduce((a, b) => a * b, 1)),
  }));
}

/**
 * MNIST for private training without public data: a second-order scattering transform (models/features/scattering.ts;
 * J = 2 scales, L = 8 orientations: 81 channels on a 7×7 grid) with per-example group normalisation (27 groups of 3
 * channels), then one trained softmax layer over the 3,969 features (Tramèr & Boneh 2021's ScatterNet + linear).
 * The features are computed up-front ({@link mnistScatterInput}), not by the spec: the modulus is not a conv layer,
 * so this spec's input is the feature vector, not the image. Filters and normalisation use no data: no privacy cost.
 */
export const MNIST_SCATTERING: ScatteringOptions = { size: 28, J: 2, L: 8 };
export const MNIST_SCATTER_GROUPS = 27;
export const mnistScatter: ModelSpec = {
  format: MODEL_SPEC_FORMAT,
  name: 'mnist-scatter',
  inputShape: [81 * 7 * 7], // = scatteringFeatures(MNIST_SCATTERING), a literal (test/federated/model/scattering.test.ts checks it)
  layers: [{ type: 'dense', units: 10, activation: 'softmax' }],
  inputName: 'scattering',
  outputName: 'probabilities',
  labels: DIGITS,
};

/** {@link mnistScatter}'s input for n 28×28 digits (n × 784 in [0, 1]): scattering, then group normalisation. */
export function mnistScatterInput(images: Float32Array, n: number): Float32Array {
  return groupNormalize(
    scatter(images, n, MNIST_SCATTERING),
    n,
    scatteringChannels(MNIST_SCATTERING),
    MNIST_SCATTER_GROUPS,
  );
}
