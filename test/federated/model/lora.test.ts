/** FFA-LoRA's pure half: which weights are adapted, A the same from the same seed, and the merge W + (α/r)·A·B. */
import { describe, expect, it } from 'vitest';
import { initDecoderWeights } from '../../../federated/model/decoder-spec.ts';
import { loraA, loraTargets, mergeLora } from '../../../federated/model/lora.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import { tinyDecoder } from '../../fixtures/tiny-decoder.ts';

const lora = { rank: 2, alpha: 4, seed: 12345 };

describe('LoRA adapters', () => {
  it('adapts every attention and MLP projection; B is rank × outputs per target', () => {
    const { targets, length } = loraTargets(tinyDecoder, 2);
    expect(targets.map((t) => t.name)).toEqual([
      'h.0.attn.c_attn.weight',
      'h.0.attn.c_proj.weight',
      'h.0.mlp.c_fc.weight',
      'h.0.mlp.c_proj.weight',
      'h.1.attn.c_attn.weight',
      'h.1.attn.c_proj.weight',
      'h.1.mlp.c_fc.weight',
      'h.1.mlp.c_proj.weight',
    ]);
    expect(length).toBe(2 * 2 * (96 + 32 + 64 + 32));
    expect(() => loraTargets(tinyDecoder, 0)).toThrow(/rank/);
  });

  it('derives A from the seed alone, within ±1/√inputs', () => {
    const { targets } = loraTargets(tinyDecoder, 2);
    const a = loraA(targets[0]!, 0, lora);
    expect(loraA(targets[0]!, 0, lora)).toEqual(a);
    expect(loraA(targets[0]!, 0, { ...lora, seed: 1 })).not.toEqual(a);
    expect(loraA(targets[1]!, 1, lora)).not.toEqual(loraA(targets[1]!, 0, lora));
    for (const v of a) expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(32));
  });

  it('merges W + (α/r)·A·B, and B = 0 changes nothing', () => {
    const weights = new Map(initDecoderWeights(tinyDecoder, 1).map((w) => [w.name, w.values]));
    const { targets, length } = loraTargets(tinyDecoder, 2);
    const zero = mergeLora(tinyDecoder, weights, lora, new Float32Array(length));
    for (const t of targets) expect(zero.get(t.name)).toEqual(weights.get(t.name));
    const rand = seededRandom(3);
    const b = Float32Array.from({ length }, () => rand() - 0.5);
    const merged = mergeLora(tinyDecoder, weights, lora, b);
    const t = targets[2]!;
    const a = loraA(t, 2, lora);
    const [i, j] = [5, 7];
    let delta = 0;
    for (let k = 0; k < 2; k++) delta += a[i * 2 + k]! * b[t.offset + k * t.outputs + j]!;
    expect(merged.get(t.name)![i * t.outputs + j]! - weights.get(t.name)![i * t.outputs + j]!).toBeCloseTo(
      2 * delta,
      5,
    );
    expect(() => mergeLora(tinyDecoder, weights, lora, new Float32Array(3))).toThrow(/LoRA update/);
  });
});
