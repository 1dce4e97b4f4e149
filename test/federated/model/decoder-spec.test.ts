/** The decoder spec: what the parser refuses, GPT-2's parameter order, and GPT-2's initialisation. */
import { describe, expect, it } from 'vitest';
import {
  decoderParameterCount,
  decoderParameterShapes,
  initDecoderWeights,
  isDecoderSpec,
  parseDecoderSpec,
} from '../../../federated/model/decoder-spec.ts';
import { ModelSpecError, parseModelSpec } from '../../../federated/model/model-spec.ts';
import { mnistMlp } from '../../../models/specs.ts';
import { tinyDecoder } from '../../fixtures/tiny-decoder.ts';

describe('parseDecoderSpec', () => {
  const base = { ...tinyDecoder } as Record<string, unknown>;
  it.each([
    ['a classifier spec', mnistMlp, /kind must be "decoder"/],
    ['another kind', { ...base, kind: 'encoder' }, /kind must be "decoder", got "encoder"/],
    ['a wrong format', { ...base, format: 'fedge.model/v2' }, /format must be "fedge.model\/v1"/],
    ['heads that do not divide embedDim', { ...base, heads: 5 }, /heads \(5\) must divide embedDim \(32\)/],
    ['a fractional size', { ...base, mlpDim: 64.5 }, /mlpDim must be a positive integer, got 64.5/],
    ['a zero layer count', { ...base, layers: 0 }, /layers must be a positive integer, got 0/],
    ['a size given as a string', { ...base, vocabSize: '97' }, /vocabSize must be a positive integer, got "97"/],
    ['a missing field', { ...base, contextLength: undefined }, /contextLength must be a positive integer/],
    [
      'a token id outside the vocabulary',
      { ...base, eosTokenId: 97 },
      /eosTokenId must be an integer in \[0, vocabSize 97\)/,
    ],
    ['a negative token id', { ...base, padTokenId: -1 }, /padTokenId must be an integer/],
    ['another activation', { ...base, activation: 'relu' }, /activation must be "gelu_tanh"/],
    ['a zero epsilon', { ...base, layerNormEpsilon: 0 }, /layerNormEpsilon must be in \(0, 1\)/],
    ['an unknown field (a typo)', { ...base, numHeads: 4 }, /unknown field\(s\) numHeads/],
    ['an empty name', { ...base, name: '' }, /name must be a non-empty string/],
    ['not an object', [tinyDecoder], /expected an object/],
  ])('refuses %s', (_what, spec, message) => {
    expect(() => parseDecoderSpec(spec)).toThrow(ModelSpecError);
    expect(() => parseDecoderSpec(spec)).toThrow(message);
  });

  it('accepts a valid spec from JSON, and the classifier parser still takes classifier specs', () => {
    const json = JSON.parse(JSON.stringify(tinyDecoder));
    expect(isDecoderSpec(json)).toBe(true);
    expect(parseDecoderSpec(json)).toEqual(tinyDecoder);
    expect(isDecoderSpec(mnistMlp)).toBe(false);
    expect(parseModelSpec(JSON.parse(JSON.stringify(mnistMlp)))).toEqual(mnistMlp);
  });
});

describe('decoderParameterShapes', () => {
  it("lists GPT-2's parameters in state-dict order, matrices input-major", () => {
    const shapes = decoderParameterShapes({ ...tinyDecoder, layers: 1 }).map((p) => `${p.name}[${p.shape}]`);
    expect(shapes).toEqual([
      'wte[97,32]',
      'wpe[32,32]',
      'h.0.ln_1.weight[32]',
      'h.0.ln_1.bias[32]',
      'h.0.attn.c_attn.weight[32,96]',
      'h.0.attn.c_attn.bias[96]',
      'h.0.attn.c_proj.weight[32,32]',
      'h.0.attn.c_proj.bias[32]',
      'h.0.ln_2.weight[32]',
      'h.0.ln_2.bias[32]',
      'h.0.mlp.c_fc.weight[32,64]',
      'h.0.mlp.c_fc.bias[64]',
      'h.0.mlp.c_proj.weight[64,32]',
      'h.0.mlp.c_proj.bias[32]',
      'ln_f.weight[32]',
      'ln_f.bias[32]',
    ]);
    expect(decoderParameterShapes(tinyDecoder)[14]!.name).toBe('h.1.ln_1.weight');
  });

  it('counts the default size: 4.27 M parameters for V=4096, T=256, d=256, L=4, mlp 1024', () => {
    const spec = { ...tinyDecoder, vocabSize: 4096, contextLength: 256, embedDim: 256, layers: 4, mlpDim: 1024 };
    expect(decoderParameterCount(spec)).toBe(4096 * 256 + 256 * 256 + 4 * (12 * 256 * 256 + 9 * 256 + 1024) + 512);
  });
});

describe('initDecoderWeights', () => {
  const std = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
  const spec = { ...tinyDecoder, embedDim: 64, mlpDim: 256, vocabSize: 500 };

  it("is GPT-2's: N(0, 0.02), wpe N(0, 0.01), residual projections 0.02/√(2L), biases 0, LayerNorm gains 1; deterministic in the seed", () => {
    const weights = initDecoderWeights(spec, 3);
    const w = Object.fromEntries(weights.map((x) => [x.name, x.values]));
    expect(std(w.wte!)).toBeCloseTo(0.02, 3);
    expect(std(w.wpe!)).toBeCloseTo(0.01, 3);
    expect(std(w['h.1.mlp.c_fc.weight']!)).toBeCloseTo(0.02, 3);
    expect(std(w['h.0.attn.c_proj.weight']!)).toBeCloseTo(0.01, 3);
    expect(std(w['h.1.mlp.c_proj.weight']!)).toBeCloseTo(0.01, 3);
    expect(w['h.0.attn.c_attn.bias']!.every((v) => v === 0)).toBe(true);
    expect(w['ln_f.weight']!.every((v) => v === 1)).toBe(true);
    expect(w['h.1.ln_2.bias']!.every((v) => v === 0)).toBe(true);
    expect(initDecoderWeights(spec, 3)[0]!.values).toEqual(w.wte);
    expect(initDecoderWeights(spec, 4)[0]!.values).not.toEqual(w.wte);
  });
});
