/**
 * The unmasked sum held to what honest encoders can produce (federated/aggregation/sum-bounds.ts): honest sums pass —
 * also at the clip in every coordinate, at full weight, and over many DDGauss draws — and each of the one-device
 * attacks issue 31 measured is refused: every word pushed by ±0.8·2³¹, a weight word of −Σw + 1000, a weight of
 * 0x80000000 (Σw ≤ 0), and a DDGauss update far outside its clip.
 */
import { describe, expect, it } from 'vitest';
import { updateCodec } from '../../../federated/aggregation/update-codec.ts';
import { ddgaussParameters } from '../../../federated/dp/distributed-dp.ts';
import { fixedPointFor } from '../../../federated/secagg/fixed-point.ts';

const seed = new Uint8Array(32).fill(3);
const add = (...xs: Uint32Array[]) => xs.reduce((a, b) => a.map((v, i) => (v + b[i]!) >>> 0));
const D = 50;
const fixed = updateCodec({
  dimension: D,
  fixedPoint: fixedPointFor({ maxDevices: 20, clip: 1, maxExamples: 100 }),
  seed,
});
const honest = (value: number, examples = 100) => fixed.encode(new Float32Array(D).fill(value), examples);

describe('sum bounds, fixed point', () => {
  it('passes honest sums: small updates, every coordinate at ±clip, full and partial weights', async () => {
    expect(fixed.check(add(await honest(0.01), await honest(-0.02), await honest(0.03)), 3)).toBeUndefined();
    expect(fixed.check(add(await honest(5), await honest(5), await honest(5)), 3)).toBeUndefined();
    expect(fixed.check(add(await honest(-1, 7), await honest(-1, 1), await honest(-1, 100)), 3)).toBeUndefined();
    // Fewer survivors' worth of weight than devices is fine (a device with few examples).
    expect(fixed.check(add(await honest(0.5, 1), await honest(0.5, 1)), 5)).toBeUndefined();
  });

  it('refuses one device masking ±0.8·2³¹ in every word', async () => {
    const attack = new Uint32Array(D + 1).map((_, i) => (i % 2 ? 0.8 * 2 ** 31 : -0.8 * 2 ** 31) >>> 0);
    const sum = add(await honest(0.01), await honest(0.01), attack);
    expect(fixed.check(sum, 3)).toMatch(/total weight|coordinate/);
  });

  it('refuses a weight word of −(honest weights) + 1000, which would multiply the mean by ~10⁸', async () => {
    const a = await honest(0.01),
      b = await honest(0.02);
    const attack = new Uint32Array(D + 1);
    attack[D] = (-(a[D]! + b[D]!) + 1000) >>> 0;
    expect(fixed.check(add(a, b, attack), 3)).toMatch(/coordinate 0 is .* beyond clip × total weight/);
  });

  it('refuses a weight of 0x80000000 (Σw ≤ 0) and a weight above the devices’ count', async () => {
    const attack = new Uint32Array(D + 1);
    attack[D] = 0x80000000;
    expect(fixed.check(add(await honest(0.01), await honest(0.01), attack), 3)).toMatch(/holds no examples/);
    const heavy = new Uint32Array(D + 1);
    heavy[D] = (await honest(0))[D]! * 5;
    expect(fixed.check(add(await honest(0.01), heavy), 2)).toMatch(/more than its 2 devices'/);
  });
});

describe('sum bounds, DDGauss', () => {
  const params = ddgaussParameters({ clip: 1, centralNoiseStd: 0.5, devices: 3, dimension: D });
  const dd = updateCodec({
    dimension: D,
    fixedPoint: fixedPointFor({ maxDevices: 3, clip: 1, maxExamples: 1 }),
    distributedDp: params,
    seed,
  });
  const update = (v: number) => new Float32Array(D).fill(v);

  it('passes 50 honest sums of three devices at and beyond the clip', async () => {
    for (let t = 0; t < 50; t++) {
      const sum = add(await dd.encode(update(1), 1), await dd.encode(update(-1), 1), await dd.encode(update(0.001), 1));
      expect(dd.check(sum, 3)).toBeUndefined();
    }
  });

  it('refuses one device masking ±0.8·2³¹ in every word', async () => {
    const honestSum = add(await dd.encode(update(0.1), 1), await dd.encode(update(0.1), 1));
    const attack = new Uint32Array(dd.length).map((_, i) => (i % 2 ? 0.8 * 2 ** 31 : -0.8 * 2 ** 31) >>> 0);
    expect(dd.check(add(honestSum, attack), 3)).toMatch(/norm .* is beyond/);
  });
});
