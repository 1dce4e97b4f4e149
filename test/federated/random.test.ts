/**
 * federated/random.ts: randomBytes gives any length (getRandomValues refuses more than 65,536 bytes a call, so a
 * single call would throw above it), fills all of it, and never asks the platform for more than its limit at once;
 * unitFloat uses all 53 bits and stays in [0, 1).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_RANDOM_VALUES_BYTES, randomBytes, randomWords, unitFloat } from '../../federated/random.ts';

afterEach(() => vi.restoreAllMocks());

describe('randomBytes', () => {
  it('gives the asked length, above 65,536 bytes too', () => {
    for (const n of [0, 1, 32, 65_535, 65_536, 65_537, 200_000, 3 * 65_536]) expect(randomBytes(n).byteLength).toBe(n);
  });

  it('calls getRandomValues with at most 65,536 bytes each time, covering every byte once', () => {
    const calls: [number, number][] = [];
    vi.spyOn(crypto, 'getRandomValues').mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
      calls.push([array!.byteOffset, array!.byteLength]);
      new Uint8Array(array!.buffer, array!.byteOffset, array!.byteLength).fill(0xab);
      return array;
    });
    const out = randomBytes(2 * MAX_RANDOM_VALUES_BYTES + 10);
    expect(calls).toEqual([
      [0, 65_536],
      [65_536, 65_536],
      [131_072, 10],
    ]);
    expect(out.every((b) => b === 0xab)).toBe(true);
  });

  it('fills the whole array with randomness, the tail past the last full call included', () => {
    const out = randomBytes(MAX_RANDOM_VALUES_BYTES + 4096);
    // A zero-filled tail of 4,096 bytes has probability 2^-32768.
    expect(out.subarray(MAX_RANDOM_VALUES_BYTES).some((b) => b !== 0)).toBe(true);
    // Byte values spread out: each of 256 values about 68,096 / 256 ≈ 266 times; none absent or 3× over.
    const counts = new Uint32Array(256);
    for (const b of out) counts[b]!++;
    expect(Math.min(...counts)).toBeGreaterThan(150);
    expect(Math.max(...counts)).toBeLessThan(400);
  });

  it('refuses a length that is not a non-negative integer, with a RangeError that names it', () => {
    for (const n of [-1, 1.5, Number.NaN, Infinity]) expect(() => randomBytes(n)).toThrow(/^randomBytes: n must be/);
    expect(() => randomBytes(-1)).toThrow(RangeError);
    expect(() => randomWords(-1)).toThrow(/^randomWords: n must be/);
  });
});

describe('randomWords', () => {
  it("gives n aligned words (more than one getRandomValues call's worth too)", () => {
    const w = randomWords(20_000);
    expect(w).toBeInstanceOf(Uint32Array);
    expect(w.length).toBe(20_000);
    expect(w.byteOffset).toBe(0);
    expect(w.some((x) => x >= 2 ** 31)).toBe(true);
  });
});

describe('unitFloat', () => {
  it('maps the 27 high bits of hi and 26 of lo to k·2^-53, in [0, 1)', () => {
    expect(unitFloat(0, 0)).toBe(0);
    expect(unitFloat(0xffffffff, 0xffffffff)).toBe(1 - 2 ** -53);
    expect(unitFloat(0, 1 << 6)).toBe(2 ** -53); // the lowest bit that counts
    expect(unitFloat(0, 63)).toBe(0); // bits below it do not
    expect(unitFloat(1 << 31, 0)).toBe(0.5);
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), (hi, lo) => {
        const u = unitFloat(hi, lo);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThan(1);
        expect(Number.isInteger(u * 2 ** 53)).toBe(true);
        expect(u * 2 ** 53).toBe((hi >>> 5) * 2 ** 26 + (lo >>> 6));
      }),
      { seed: 9, numRuns: 1000 },
    );
  });
});
