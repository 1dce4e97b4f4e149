/** The default models' specs: what `npm run models` trains and the edge serves. */
import { MODEL_SPEC_FORMAT, type ModelSpec } from '../federated/model/model-spec.ts';

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
