/**
 * How the app feeds a model and reads its answer, from the model's OIP metadata: a 784-wide or 28×28×1 input is a
 * digit; an input the model declares a text featurizer for (or a BYTES input) takes the raw text, which the edge and
 * LocalModel featurize themselves. Labels come from the bundled specs where the model is one of them, else the class
 * index.
 */
import type { ModelMetadata } from '../../client-sdk/index.ts';
import { mnistCnn, mnistMlp, spamBow } from '../../models/specs.ts';

export type InputKind = 'digit' | 'text' | 'unsupported';

export function inputKind(meta: ModelMetadata): InputKind {
  const shape = meta.inputs[0]?.shape.slice(1).join('x');
  if (shape === '784' || shape === '28x28x1') return 'digit';
  if (meta.inputs[0]?.featurizer || meta.inputs[0]?.datatype === 'BYTES') return 'text';
  return 'unsupported';
}

export function digitInput(meta: ModelMetadata, pixels: Float32Array) {
  const rest = meta.inputs[0]!.shape.slice(1);
  return { [meta.inputs[0]!.name]: { data: pixels, shape: [1, ...rest] } };
}

/** The message itself, one string: a BYTES tensor of shape [1]. */
export function textInput(meta: ModelMetadata, text: string) {
  return { [meta.inputs[0]!.name]: { data: [text], shape: [1] } };
}

export function labelsFor(meta: ModelMetadata, classes: number): string[] {
  for (const s of [spamBow, mnistMlp, mnistCnn]) if (s.labels.length === classes && (meta.name === s.name || (s !== spamBow && classes === 10))) return s.labels;
  return Array.from({ length: classes }, (_, i) => String(i));
}

/** Classes by probability, best first. */
export function ranked(probabilities: ArrayLike<number>, labels: string[]): { label: string; p: number }[] {
  return Array.from(probabilities, (p, i) => ({ label: labels[i] ?? String(i), p: Number(p) })).sort((a, b) => b.p - a.p);
}
