/**
 * The update codec is the contract between a device's encoding and the server's decoding: a sum of encodings
 * decodes to the FedAvg weighted mean (fixed point) or the survivors' mean (DDGauss), and a sum that cannot be
 * a real round's is refused with a typed error.
 */
import { describe, expect, it } from 'vitest';
import { ddgaussParameters } from '../../../federated/dp/distributed-dp.ts';
import { UpdateDecodeError, updateCodec } from '../../../federated/aggregation/update-codec.ts';
import { fixedPointFor } from '../../../federated/secagg/fixed-point.ts';

const seed = new Uint8Array(32).fill(7);
const add = (a: Uint32Array, b: Uint32Array) => a.map((v, i) => (v + b[i]!) >>> 0);

describe('update codec', () => {
  it('fixed point: the sum decodes to the example-weighted mean, length d + 1', async () => {
    const codec = updateCodec({
      dimension: 4,
      fixedPoint: fixedPointFor({ maxDevices: 10, clip: 1, maxExamples: 100 }),
      seed,
    });
    expect(codec.length).toBe(5);
    const a = await codec.encode(Float32Array.of(0.5, -0.5, 0.1, 0), 30);
    const b = await codec.encode(Float32Array.of(-0.1, 0.3, 0.1, 0.2), 10);
    const mean = await codec.decode(add(a, b), 2);
    const want = [0.5 * 0.75 - 0.1 * 0.25, -0.5 * 0.75 + 0.3 * 0.25, 0.1, 0.2 * 0.25];
    mean.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
  });

  it('fixed point: a sum with no weight is refused, not divided by zero', async () => {
    const codec = updateCodec({
      dimension: 3,
      fixedPoint: fixedPointFor({ maxDevices: 10, clip: 1, maxExamples: 100 }),
      seed,
    });
    await expect(codec.decode(new Uint32Array(4), 3)).rejects.toThrow(UpdateDecodeError);
  });

  it("DDGauss: padded length, and the sum decodes to the survivors' mean within the noise", async () => {
    const params = ddgaussParameters({ clip: 1, centralNoiseStd: 0.001, devices: 3, dimension: 6 });
    const codec = updateCodec({
      dimension: 6,
      fixedPoint: fixedPointFor({ maxDevices: 3, clip: 1, maxExamples: 100 }),
      distributedDp: params,
      seed,
    });
    expect(codec.length).toBe(params.paddedDimension);
    const updates = [
      Float32Array.of(0.1, 0.2, 0, 0, -0.1, 0.05),
      Float32Array.of(0.3, 0, 0.1, 0, 0.1, 0.05),
      Float32Array.of(-0.1, 0.1, 0.2, 0, 0, 0.05),
    ];
    let sum = new Uint32Array(codec.length);
    for (const u of updates) sum = add(sum, await codec.encode(u, 50));
    const mean = await codec.decode(sum, 3);
    expect(mean.length).toBe(6);
    for (let i = 0; i < 6; i++)
      expect(Math.abs(mean[i]! - updates.reduce((s, u) => s + u[i]!, 0) / 3)).toBeLessThan(0.05);
  });
});
