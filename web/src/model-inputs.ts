/**
 * How the app feeds a model and reads its answer, from the model's OIP metadata: a 784-wide or 28×28×1 input is a
 * digit; an input the model declares a text featurizer for (or a BYTES input) takes the raw text, which the edge and
 * LocalModel featurize themselves. Labels come from the bundled specs where the model is one of them, else the class
 * index.
 */
import type { Datatype, ModelMetadata, TensorInput } from '../../client-sdk/index.ts';
import { mnistCnn, mnistMlp, spamBow } from '../../models/specs.ts';

export type InputKind = 'digit' | 'text' | 'generic';

export function inputKind(meta: ModelMetadata): InputKind {
  const shape = meta.inputs[0]?.shape.slice(1).join('x');
  if (shape === '784' || shape === '28x28x1') return 'digit';
  if (meta.inputs[0]?.featurizer || meta.inputs[0]?.datatype === 'BYTES') return 'text';
  return 'generic';
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
  for (const s of [spamBow, mnistMlp, mnistCnn])
    if (s.labels.length === classes && (meta.name === s.name || (s !== spamBow && classes === 10))) return s.labels;
  return Array.from({ length: classes }, (_, i) => String(i));
}

/** Classes by probability, best first. */
export function ranked(probabilities: ArrayLike<number>, labels: string[]): { label: string; p: number }[] {
  return Array.from(probabilities, (p, i) => ({ label: labels[i] ?? String(i), p: Number(p) })).sort(
    (a, b) => b.p - a.p,
  );
}

/** The shape the form sends for an input: the declared one, with each open dimension (-1) as 1. */
export const concreteShape = (shape: number[]) => shape.map((d) => (d < 0 ? 1 : d));

const INTEGER = /^U?INT(8|16|32|64)$/;

/**
 * The inputs typed into the generic form: numbers separated by commas or spaces, as many as the shape holds (one
 * number fills them all), or one string per line for BYTES. A wrong count is said in words before anything is sent.
 */
export function formInputs(meta: ModelMetadata, texts: string[]) {
  const inputs: Record<string, TensorInput> = {};
  meta.inputs.forEach((m, i) => {
    const shape = concreteShape(m.shape);
    const n = shape.reduce((a, b) => a * b, 1);
    const text = texts[i] ?? '';
    if (m.datatype === 'BYTES') {
      const lines = text.split('\n');
      if (lines.length !== n)
        throw new Error(
          `${m.name}: ${n} line${n === 1 ? '' : 's'} of text (shape [${shape.join(', ')}]), got ${lines.length}`,
        );
      inputs[m.name] = { data: lines, shape };
      return;
    }
    const values = text
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(Number);
    if (values.some((v) => !Number.isFinite(v)))
      throw new Error(`${m.name}: numbers only, separated by commas or spaces`);
    const data = values.length === 1 ? Array<number>(n).fill(values[0]!) : values;
    if (data.length !== n)
      throw new Error(
        `${m.name}: shape [${shape.join(', ')}] takes ${n} numbers (or one for all), got ${values.length}`,
      );
    if (INTEGER.test(m.datatype) && data.some((v) => !Number.isInteger(v)))
      throw new Error(`${m.name}: ${m.datatype} takes integers`);
    inputs[m.name] =
      m.datatype === 'INT64'
        ? { data: BigInt64Array.from(data, (v) => BigInt(v)), shape }
        : { data, shape, datatype: m.datatype as Datatype };
  });
  return inputs;
}

/** The first values of a tensor, for showing a model's raw output. */
export function preview(values: ArrayLike<unknown>, count = 8): string {
  const shown = Array.from({ length: Math.min(count, values.length) }, (_, i) => {
    const v = values[i];
    return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v);
  });
  return `[${shown.join(', ')}${values.length > count ? `, … ${values.length} in all` : ''}]`;
}
