/**
 * federated/bytes.ts: views alias the memory they view (a copy would pass a read test but lose writes), misaligned or
 * odd-length words are refused with the caller's label, framing round-trips and never gives two part lists the same
 * bytes, and base64 agrees with Node's Buffer.
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  concat,
  dataView,
  equal,
  f32,
  frameAt,
  framed,
  framedList,
  fromBase64,
  fromBase64Url,
  i8,
  toBase64,
  u16,
  u32,
  u8,
  unframe,
  utf8,
} from '../../federated/bytes.ts';

describe('views', () => {
  it('u8 of any typed array is the same memory, at its offset', () => {
    const words = new Uint32Array([0x04030201, 0x08070605, 0x0c0b0a09]).subarray(1);
    const bytes = u8(words);
    expect(bytes.buffer).toBe(words.buffer);
    expect([...bytes]).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    bytes[0] = 0xff;
    expect(words[0]).toBe(0x080706ff);
    const floats = new Float32Array(2);
    u8(floats).set([0, 0, 0x80, 0x3f], 4); // 1.0f little-endian
    expect(floats[1]).toBe(1);
    expect(u8(new DataView(words.buffer, 4, 2))).toEqual(new Uint8Array([0xff, 6])); // the write above, seen again
  });

  it('u32, f32, u16 and i8 write through to the bytes they view', () => {
    const backing = new Uint8Array(16);
    const bytes = backing.subarray(4, 12);
    const w = u32(bytes);
    expect(w.length).toBe(2);
    w[1] = 0xdeadbeef;
    expect([...backing.subarray(8, 12)]).toEqual([0xef, 0xbe, 0xad, 0xde]);
    f32(bytes)[0] = -2;
    expect([...backing.subarray(4, 8)]).toEqual([0, 0, 0, 0xc0]);
    u16(bytes)[3] = 0x0102;
    expect([...backing.subarray(10, 12)]).toEqual([2, 1]);
    i8(bytes)[0] = -1;
    expect(backing[4]).toBe(0xff);
    expect(i8(new Uint8Array([0x80, 0x7f]))).toEqual(new Int8Array([-128, 127]));
  });

  it("dataView reads at the view's offset, not the buffer's start", () => {
    const bytes = new Uint8Array([9, 9, 1, 0, 0, 0]).subarray(2);
    expect(dataView(bytes).getUint32(0, true)).toBe(1);
    dataView(bytes).setUint16(2, 0x0201, true);
    expect([...bytes]).toEqual([1, 0, 1, 2]);
  });

  it('a misaligned offset or an odd length is a RangeError that names the bytes', () => {
    const buf = new Uint8Array(13);
    expect(() => u32(buf.subarray(1, 9), 'masked input')).toThrow(RangeError);
    expect(() => u32(buf.subarray(1, 9), 'masked input')).toThrow(
      /^masked input: 4-byte elements .* offset 1 and length 8/,
    );
    expect(() => u32(buf.subarray(0, 6), 'sum')).toThrow(/^sum: .*offset 0 and length 6/);
    expect(() => f32(buf, 'weights')).toThrow(/^weights: .*length 13/);
    expect(() => f32(buf.subarray(2, 10))).toThrow(/^f32: /);
    expect(() => u16(buf.subarray(1, 3), 'fp16 output')).toThrow(/^fp16 output: 2-byte elements/);
    // The same bytes aligned by a copy are fine: slice() starts a new buffer at offset 0.
    expect(u32(buf.subarray(1, 9).slice()).length).toBe(2);
  });

  it('anything that is not a typed array is a TypeError that names it', () => {
    expect(() => u8(new ArrayBuffer(4) as never, 'body')).toThrow(TypeError);
    expect(() => u8(new ArrayBuffer(4) as never, 'body')).toThrow(/^body: expected a typed array/);
    expect(() => u32([1, 2, 3, 4] as never, 'words')).toThrow(/^words: expected a typed array/);
    expect(() => dataView(null as never)).toThrow(/^dataView: expected a typed array or DataView, got null/);
  });

  it('property: u32 of a u8 view gives back the same words, for any aligned slice', () => {
    fc.assert(
      fc.property(fc.uint32Array({ maxLength: 40 }), fc.nat(40), fc.nat(40), (words, a, b) => {
        const [lo, hi] = [Math.min(a, b, words.length), Math.min(Math.max(a, b), words.length)];
        const part = words.subarray(lo, hi);
        const back = u32(u8(part));
        expect(back).toEqual(part);
        expect(back.byteOffset).toBe(part.byteOffset);
        expect(back.buffer).toBe(words.buffer);
      }),
      { seed: 3, numRuns: 300 },
    );
  });
});

describe('concat and equal', () => {
  it('concat puts the parts one after another in a new buffer', () => {
    const a = new Uint8Array([1, 2]),
      b = new Uint8Array(0),
      c = new Uint8Array([3]);
    const out = concat(a, b, c);
    expect(out).toEqual(new Uint8Array([1, 2, 3]));
    out[0] = 9;
    expect(a[0]).toBe(1);
    expect(concat()).toEqual(new Uint8Array(0));
    expect(() => concat(a, 'x' as never)).toThrow(/^concat: part 1 is not a Uint8Array/);
  });

  it('equal compares every byte and the length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ maxLength: 32 }), (a, b) => {
        expect(equal(a, b)).toBe(Buffer.from(a).equals(Buffer.from(b)));
        expect(equal(a, a.slice())).toBe(true);
      }),
      { seed: 4, numRuns: 300 },
    );
    // A difference in the last byte only: an early-exit-free loop still has to see it.
    expect(equal(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(equal(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
  });
});

describe('length-prefixed framing', () => {
  const part = fc.oneof(fc.uint8Array({ maxLength: 20 }), fc.string({ maxLength: 12 }));
  const asBytes = (p: Uint8Array | string) => (typeof p === 'string' ? utf8(p) : p);

  it("is each part's 4-byte little-endian length, then the part (strings as UTF-8)", () => {
    expect([...framed('ab', new Uint8Array([7]))]).toEqual([2, 0, 0, 0, 0x61, 0x62, 1, 0, 0, 0, 7]);
    expect([...framed('é')]).toEqual([2, 0, 0, 0, 0xc3, 0xa9]);
    expect(framed()).toEqual(new Uint8Array(0));
    expect(framedList(['ab', new Uint8Array([7])])).toEqual(framed('ab', new Uint8Array([7])));
  });

  it('round-trips: unframe gives back the parts as bytes', () => {
    fc.assert(
      fc.property(fc.array(part, { maxLength: 8 }), (parts) => {
        const back = unframe(framed(...parts));
        expect(back).toEqual(parts.map(asBytes));
      }),
      { seed: 5, numRuns: 500 },
    );
  });

  it('is injective: two different lists of parts never frame to the same bytes', () => {
    // The same concatenated content split differently is the case a plain concat gets wrong.
    expect(framed('ab', 'c')).not.toEqual(framed('a', 'bc'));
    expect(framed('abc')).not.toEqual(framed('abc', ''));
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 6 }), { maxLength: 5 }),
        fc.array(fc.uint8Array({ maxLength: 6 }), { maxLength: 5 }),
        (a, b) => {
          const same = a.length === b.length && a.every((p, i) => equal(p, b[i]!));
          expect(equal(framed(...a), framed(...b))).toBe(same);
        },
      ),
      { seed: 6, numRuns: 2000 },
    );
    // Every way to cut one byte string into parts (and with an empty part in front or behind) frames differently.
    const content = [1, 2, 3, 4];
    const splits: Uint8Array[][] = [];
    for (let mask = 0; mask < 8; mask++) {
      const parts: number[][] = [[]];
      content.forEach((b, i) => {
        if (i > 0 && mask & (1 << (i - 1))) parts.push([]);
        parts.at(-1)!.push(b);
      });
      splits.push(parts.map((p) => Uint8Array.from(p)));
    }
    splits.push([new Uint8Array(0), Uint8Array.from(content)], [Uint8Array.from(content), new Uint8Array(0)]);
    expect(new Set(splits.map((s) => toBase64(framed(...s)))).size).toBe(splits.length);
  });

  it('unframe refuses a length that runs past the end, a cut-short length, and too many parts', () => {
    const good = framed('abc', 'de');
    expect(unframe(good.subarray(0, good.length - 1))).toBeNull();
    expect(unframe(concat(good, new Uint8Array([1, 0])))).toBeNull();
    expect(unframe(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toBeNull();
    expect(unframe(good, 1)).toBeNull();
    expect(unframe(good, 2)).toHaveLength(2);
    expect(unframe(new Uint8Array(0))).toEqual([]);
  });

  it('frameAt says why a frame does not fit: no room for the length, or the length it claims', () => {
    const bytes = concat(framed('xy'), new Uint8Array([9, 0, 0, 0, 1]));
    const first = frameAt(bytes, 0);
    expect(first.part && [...first.part]).toEqual([0x78, 0x79]);
    expect(first.part && first.next).toBe(6);
    expect(frameAt(bytes, 6)).toEqual({ claimed: 9 });
    expect(frameAt(bytes, 8)).toEqual({ claimed: undefined });
    expect(frameAt(bytes, bytes.length)).toEqual({ claimed: undefined });
    // A claimed length near 2^32 must not wrap an addition into "fits".
    expect(frameAt(new Uint8Array([0xfc, 0xff, 0xff, 0xff, 0]), 0)).toEqual({ claimed: 0xfffffffc });
    expect(() => frameAt(bytes, -1)).toThrow(RangeError);
    expect(() => frameAt('xy' as never, 0)).toThrow(/^frameAt: expected a Uint8Array/);
  });

  it('the part is a view into the framed bytes, not a copy', () => {
    const bytes = framed(new Uint8Array([1, 2, 3]));
    const [p] = unframe(bytes)!;
    expect(p!.buffer).toBe(bytes.buffer);
    expect(p!.byteOffset).toBe(4);
  });

  it('refuses a part that is neither bytes nor a string', () => {
    expect(() => framed('a', 3 as never)).toThrow(TypeError);
    expect(() => framed('a', 3 as never)).toThrow(/^framed: part 1/);
  });
});

describe('base64', () => {
  it("matches Node's Buffer both ways, lengths 0 to well past one 32 KiB slice", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const text = toBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect(fromBase64(text)).toEqual(new Uint8Array(Buffer.from(text, 'base64')));
      }),
      { seed: 7, numRuns: 500 },
    );
    const big = Uint8Array.from({ length: 0x8000 * 2 + 5 }, (_, i) => (i * 31) & 255);
    expect(toBase64(big)).toBe(Buffer.from(big).toString('base64'));
    expect(fromBase64(toBase64(big))).toEqual(big);
  });

  it('base64url (JWK) decodes with or without padding, as Buffer does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const url = Buffer.from(bytes).toString('base64url');
        expect(fromBase64Url(url)).toEqual(new Uint8Array(bytes));
      }),
      { seed: 8, numRuns: 300 },
    );
  });

  it('refuses text outside the alphabet, and non-strings with a TypeError', () => {
    expect(() => fromBase64('ab$d')).toThrow();
    expect(() => fromBase64(42 as never)).toThrow(TypeError);
    expect(() => toBase64('abc' as never)).toThrow(/^toBase64: expected a Uint8Array/);
  });
});
