/**
 * Decoder spec: a GPT-2-architecture language model (pre-LN blocks, causal multi-head attention, GELU-tanh MLP, final
 * LayerNorm, output logits tied to the token embedding) as plain, versioned data. One spec + one set of named float32
 * weights builds the tfjs forward pass (decoder-tfjs.ts, training) and the ONNX graph (decoder-export.ts, serving).
 * Names and layouts are GPT-2's (Hugging Face `GPT2Model` state dict, `transformer.` dropped): matrices are
 * input-major, y = x @ W + b, as GPT-2's Conv1D stores them, so a PyTorch checkpoint maps over without transposes.
 */
import { seededRandom } from '../seeded-random.ts';
import { MODEL_SPEC_FORMAT, ModelSpecError, type NamedWeight } from './model-spec.ts';

export interface DecoderSpec {
  format: typeof MODEL_SPEC_FORMAT;
  kind: 'decoder';
  name: string;
  vocabSize: number;
  /** Most positions the model has embeddings for (prompt + generated tokens). */
  contextLength: number;
  layers: number;
  heads: number;
  embedDim: number;
  mlpDim: number;
  layerNormEpsilon: number;
  activation: 'gelu_tanh';
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
}

/** The fields a decoder spec has, in the order they are written; anything else is refused (a typo is not ignored). */
const FIELDS = [
  'format',
  'kind',
  'name',
  'vocabSize',
  'contextLength',
  'layers',
  'heads',
  'embedDim',
  'mlpDim',
  'layerNormEpsilon',
  'activation',
  'bosTokenId',
  'eosTokenId',
  'padTokenId',
] as const satisfies readonly (keyof DecoderSpec)[];

const SIZES = ['vocabSize', 'contextLength', 'layers', 'heads', 'embedDim', 'mlpDim'] as const;
const TOKEN_IDS = ['bosTokenId', 'eosTokenId', 'padTokenId'] as const;

/** Whether plain data claims to be a decoder spec (so a caller can choose between this parser and parseModelSpec). */
export function isDecoderSpec(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'decoder';
}

/** Validates a decoder spec (as plain data from anywhere) and returns a copy holding only its fields. */
export function parseDecoderSpec(value: unknown): DecoderSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ModelSpecError('decoder spec: expected an object');
  const s = value as Record<string, unknown>;
  if (s.format !== MODEL_SPEC_FORMAT)
    throw new ModelSpecError(`decoder spec: format must be "${MODEL_SPEC_FORMAT}", got ${JSON.stringify(s.format)}`);
  if (s.kind !== 'decoder')
    throw new ModelSpecError(`decoder spec: kind must be "decoder", got ${JSON.stringify(s.kind)}`);
  const unknown = Object.keys(s).filter((k) => !(FIELDS as readonly string[]).includes(k));
  if (unknown.length) throw new ModelSpecError(`decoder spec: unknown field(s) ${unknown.join(', ')}`);
  if (typeof s.name !== 'string' || !s.name) throw new ModelSpecError('decoder spec: name must be a non-empty string');
  for (const k of SIZES) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
      throw new ModelSpecError(`decoder spec: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  const spec = s as unknown as DecoderSpec;
  if (spec.embedDim % spec.heads !== 0)
    throw new ModelSpecError(`decoder spec: heads (${spec.heads}) must divide embedDim (${spec.embedDim})`);
  if (typeof s.layerNormEpsilon !== 'number' || !(s.layerNormEpsilon > 0 && s.layerNormEpsilon < 1))
    throw new ModelSpecError(
      `decoder spec: layerNormEpsilon must be in (0, 1), got ${JSON.stringify(s.layerNormEpsilon)}`,
    );
  if (s.activation !== 'gelu_tanh')
    throw new ModelSpecError(`decoder spec: activation must be "gelu_tanh", got ${JSON.stringify(s.activation)}`);
  for (const k of TOKEN_IDS) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= spec.vocabSize)
      throw new ModelSpecError(
        `decoder spec: ${k} must be an integer in [0, vocabSize ${spec.vocabSize}), got ${JSON.stringify(v)}`,
      );
  }
  return Object.fromEntries(FIELDS.map((k) => [k, s[k]])) as unknown as DecoderSpec;
}

/**
 * Score of a masked key. Finite, not -inf: a row whose keys are all masked (a left-padding query) then softmaxes to a
 * uniform row instead of NaN, and NaN would spread through the batch's later arithmetic.
 */
export const MASKED_SCORE = -1e9;

/** Width of one attention head. */
export const headDim = (spec: DecoderSpec) => spec.embedDim / spec.heads;

/**
 * The parameters in their stable order (GPT-2's state-dict order): embeddings, then each block, then ln_f. This
 * order is the flat vector devices mask and the server sums, and the order of `NamedWeight[]` everywhere.
 */
export function decoderParameterShapes(spec: DecoderSpec): { name: string; shape: number[] }[] {
  const { vocabSize: V, contextLength: T, embedDim: d, mlpDim: m } = spec;
  const out = [
    { name: 'wte', shape: [V, d] },
    { name: 'wpe', shape: [T, d] },
  ];
  for (let i = 0; i < spec.layers; i++) {
    const h = `h.${i}`;
    out.push(
      { name: `${h}.ln_1.weight`, shape: [d] },
      { name: `${h}.ln_1.bias`, shape: [d] },
      { name: `${h}.attn.c_attn.weight`, shape: [d, 3 * d] },
      { name: `${h}.attn.c_attn.bias`, shape: [3 * d] },
      { name: `${h}.attn.c_proj.weight`, shape: [d, d] },
      { name: `${h}.attn.c_proj.bias`, shape: [d] },
      { name: `${h}.ln_2.weight`, shape: [d] },
      { name: `${h}.ln_2.bias`, shape: [d] },
      { name: `${h}.mlp.c_fc.weight`, shape: [d, m] },
      { name: `${h}.mlp.c_fc.bias`, shape: [m] },
      { name: `${h}.mlp.c_proj.weight`, shape: [m, d] },
      { name: `${h}.mlp.c_proj.bias`, shape: [d] },
    );
  }
  out.push({ name: 'ln_f.weight', shape: [d] }, { name: 'ln_f.bias', shape: [d] });
  return out;
}

export function decoderParameterCount(spec: DecoderSpec): number {
  return decoderParameterShapes(spec).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * The weights by name, after checking they are exactly the spec's parameters (names, order, shapes, lengths):
 * a weight in the wrong layout must fail here, not as a silently wrong model.
 */
export function decoderWeightMap(spec: DecoderSpec, weights: NamedWeight[], label: string): Map<string, NamedWeight> {
  const params = decoderParameterShapes(spec);
  if (weights.length !== params.length)
    throw new ModelSpecError(`${label}: expected ${params.length} weight tensors, got ${weights.length}`);
  params.forEach((p, i) => {
    const w = weights[i]!;
    if (w.name !== p.name) throw new ModelSpecError(`${label}: weight ${i} must be ${p.name}, got ${w.name}`);
    if (w.shape.length !== p.shape.length || w.shape.some((n, k) => n !== p.shape[k]))
      throw new ModelSpecError(`${label}: ${p.name} must have shape [${p.shape}], got [${w.shape}]`);
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (w.values.length !== n)
      throw new ModelSpecError(`${label}: ${p.name} must have ${n} values, got ${w.values.length}`);
  });
  return new Map(weights.map((w) => [w.name, w]));
}

/**
 * GPT-2's initialisation (Radford et al. 2019, openai/gpt-2 model.py; Hugging Face `GPT2PreTrainedModel`): matrices
 * and wte N(0, 0.02), wpe N(0, 0.01) (as openai/gpt-2 and models/fedge-gpt/pretrain.py), the two residual projections
 * (`c_proj`) N(0, 0.02/√(2L)) so the residual stream's variance does not grow with depth, biases 0, LayerNorm gains 1.
 * Deterministic in `seed` (mulberry32 + Box–Muller).
 */
export function initDecoderWeights(spec: DecoderSpec, seed: number): NamedWeight[] {
  const rand = seededRandom(seed);
  const normal = () => {
    // 1 - rand() is in (0, 1], so the log is finite.
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    return r * Math.cos(2 * Math.PI * rand());
  };
  const residualStd = 0.02 / Math.sqrt(2 * spec.layers);
  return decoderParameterShapes(spec).map(({ name, shape }) => {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('ln_1.weight') || name.endsWith('ln_2.weight') || name === 'ln_f.weight') values.fill(1);
    else if (shape.length === 2) {
      const std = name === 'wpe' ? 0.01 : name.endsWith('c_proj.weight') ? residualStd : 0.02;
      for (let i = 0; i < values.length; i++) values[i] = std * normal();
    }
    return { name, shape, values };
  });
}
