/**
 * Featurizers a model declares for its inputs, so callers can send raw text: the ONNX metadata entry
 * `fedge.featurizers` holds JSON `{ "<input name>": { "kind": "hashedBagOfWords", "buckets": …, "ngrams": 1|2,
 * "maxChars": … } }` (text-features.ts). Fedge's exporter writes it for a spec with `features`; any other toolchain
 * can set it (`onnx.helper.set_model_props`). The input must then be FP32 with its last dimension `buckets`.
 */
import type { HashedBagOfWords } from './text-features.ts';
import { readMetadataProps } from './onnx-metadata.ts';

export const FEATURIZERS_KEY = 'fedge.featurizers';

/** A declaration that does not fit the model or the featurizer's rules. */
export class FeaturizerError extends Error {
  override name = 'FeaturizerError';
}

interface InputShape {
  name: string;
  datatype: string;
  shape: number[];
}

function parseOne(input: string, v: unknown): HashedBagOfWords {
  const o = v as Partial<HashedBagOfWords> | null;
  const where = `${FEATURIZERS_KEY} of input '${input.slice(0, 64)}'`;
  if (!o || typeof o !== 'object' || o.kind !== 'hashedBagOfWords')
    throw new FeaturizerError(`${where}: kind must be "hashedBagOfWords"`);
  if (!Number.isInteger(o.buckets) || o.buckets! < 1 || o.buckets! > 1 << 20)
    throw new FeaturizerError(`${where}: buckets must be an integer in 1..${1 << 20}`);
  if (o.ngrams !== 1 && o.ngrams !== 2) throw new FeaturizerError(`${where}: ngrams must be 1 or 2`);
  if (!Number.isInteger(o.maxChars) || o.maxChars! < 1 || o.maxChars! > 1 << 20)
    throw new FeaturizerError(`${where}: maxChars must be an integer in 1..${1 << 20}`);
  return { kind: 'hashedBagOfWords', buckets: o.buckets!, ngrams: o.ngrams, maxChars: o.maxChars! };
}

/** The metadata value declaring `featurizers` (what an exporter writes). */
export function featurizersProp(featurizers: Record<string, HashedBagOfWords>): Record<string, string> {
  return { [FEATURIZERS_KEY]: JSON.stringify(featurizers) };
}

/** The featurizers `bytes` declare, checked against the model's inputs; {} when it declares none. */
export function readFeaturizers(bytes: Uint8Array, inputs: readonly InputShape[]): Record<string, HashedBagOfWords> {
  const raw = readMetadataProps(bytes)[FEATURIZERS_KEY];
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new FeaturizerError(`${FEATURIZERS_KEY} is not JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new FeaturizerError(`${FEATURIZERS_KEY} must be an object of input name → featurizer`);
  const out: Record<string, HashedBagOfWords> = {};
  for (const [name, v] of Object.entries(parsed)) {
    const f = parseOne(name, v);
    const input = inputs.find((i) => i.name === name);
    if (!input)
      throw new FeaturizerError(`${FEATURIZERS_KEY} names input '${name.slice(0, 64)}', which the model does not have`);
    const last = input.shape[input.shape.length - 1];
    if (input.datatype !== 'FP32' || input.shape.length < 1 || last !== f.buckets) {
      throw new FeaturizerError(
        `${FEATURIZERS_KEY}: input '${name.slice(0, 64)}' must be FP32 with ${f.buckets} features in its last dimension, the model has ${input.datatype} [${input.shape}]`,
      );
    }
    out[name] = f;
  }
  return out;
}
