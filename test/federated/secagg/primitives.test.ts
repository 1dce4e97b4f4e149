/** SecAgg+ primitives: Web Crypto and tweetnacl give the same bytes; Shamir recovers from any t shares; the PRG is AES-CTR. */
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { afterEach, describe, expect, it } from 'vitest';
import {
  deriveKey,
  ed25519PublicKey,
  open,
  seal,
  sign,
  useJavaScriptOnly,
  verify,
  webCryptoSupport,
  x25519,
  x25519PublicKey,
} from '../../../federated/secagg/primitives.ts';
import { randomBytes } from '../../../federated/random.ts';
import { expandMask } from '../../../federated/secagg/prg.ts';
import { combine, split } from '../../../federated/secagg/shamir.ts';

afterEach(() => useJavaScriptOnly(false));

describe('one wire format, two implementations', () => {
  it('X25519 and Ed25519 through Web Crypto equal tweetnacl byte for byte', async () => {
    expect(await webCryptoSupport()).toEqual({ x25519: true, ed25519: true }); // Node 22 has both
    const [a, b, seed] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const msg = randomBytes(100);
    const web = {
      pa: await x25519PublicKey(a),
      pb: await x25519PublicKey(b),
      id: await ed25519PublicKey(seed),
      sig: await sign(seed, msg),
    };
    const shared = await x25519(a, web.pb);
    useJavaScriptOnly(true);
    expect(await x25519PublicKey(a)).toEqual(web.pa);
    expect(await x25519(b, web.pa)).toEqual(shared);
    expect(await ed25519PublicKey(seed)).toEqual(web.id);
    expect(await sign(seed, msg)).toEqual(web.sig); // Ed25519 signatures are deterministic
    expect(await verify(web.id, msg, web.sig)).toBe(true);
    useJavaScriptOnly(false);
    expect(await verify(web.id, msg, web.sig)).toBe(true);
    expect(shared).toEqual(nacl.scalarMult(a, web.pb));
  });

  it('refuses a low-order X25519 public key (all-zero shared secret) and bad signatures', async () => {
    await expect(x25519(randomBytes(32), new Uint8Array(32))).rejects.toThrow(/all-zero shared secret/);
    const seed = randomBytes(32),
      pub = await ed25519PublicKey(seed),
      sig = await sign(seed, new Uint8Array([1, 2, 3]));
    expect(await verify(pub, new Uint8Array([1, 2, 4]), sig)).toBe(false);
    expect(
      await verify(
        pub,
        new Uint8Array([1, 2, 3]),
        sig.map((x, i) => (i === 0 ? x ^ 1 : x)),
      ),
    ).toBe(false);
    expect(await verify(pub.subarray(1), new Uint8Array([1, 2, 3]), sig)).toBe(false);
  });

  it('sealed boxes open only with the right key and untouched bytes', () => {
    const key = randomBytes(32),
      text = randomBytes(70);
    const box = seal(key, text);
    expect(open(key, box)).toEqual(text);
    expect(open(randomBytes(32), box)).toBeNull();
    expect(
      open(
        key,
        box.map((x, i) => (i === 30 ? x ^ 0x80 : x)),
      ),
    ).toBeNull();
    expect(open(key, box.subarray(0, 20))).toBeNull();
  });

  it('keys for different labels or contexts differ; the mask PRG is AES-256-CTR from counter 0, in chunks', async () => {
    const k = await deriveKey('pairwise-mask', 'r1', 'a', 'b');
    expect(await deriveKey('pairwise-mask', 'r1', 'a', 'b')).toEqual(k);
    expect(await deriveKey('pairwise-mask', 'r1', 'ab', '')).not.toEqual(k);
    expect(await deriveKey('self-mask', 'r1', 'a', 'b')).not.toEqual(k);
    const mask = await expandMask(k, 10);
    const aes = await crypto.subtle.importKey('raw', k, 'AES-CTR', false, ['encrypt']);
    const ref = new Uint32Array(
      await crypto.subtle.encrypt(
        { name: 'AES-CTR', counter: new Uint8Array(16), length: 64 },
        aes,
        new Uint8Array(40),
      ),
    );
    expect(mask).toEqual(ref);
    const long = await expandMask(k, (1 << 22) + 5); // crosses a chunk boundary
    const tail = new Uint32Array(
      await crypto.subtle.encrypt(
        { name: 'AES-CTR', counter: new Uint8Array(16), length: 64 },
        aes,
        new Uint8Array(((1 << 22) + 5) * 4),
      ),
    );
    expect(long.subarray((1 << 22) - 3)).toEqual(tail.subarray((1 << 22) - 3));
    await expect(expandMask(new Uint8Array(16), 4)).rejects.toThrow(/32 bytes/);
  });
});

describe('Shamir over GF(2^8)', () => {
  it('any t of n shares recover the secret; t − 1 shares do not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            t: fc.integer({ min: 1, max: n }),
            secret: fc.uint8Array({ minLength: 1, maxLength: 48 }),
            pick: fc.shuffledSubarray(
              Array.from({ length: n }, (_, i) => i),
              { minLength: n, maxLength: n },
            ),
          }),
        ),
        ({ n, t, secret, pick }) => {
          const shares = split(
            secret,
            t,
            Array.from({ length: n }, (_, i) => i + 1),
          );
          expect(combine(pick.slice(0, t).map((i) => shares[i]!))).toEqual(secret);
          expect(combine(pick.map((i) => shares[i]!))).toEqual(secret);
        },
      ),
      { numRuns: 200 },
    );
    // With t − 1 shares of a 32-byte secret, the interpolation is a different (uniformly random) value.
    const secret = randomBytes(32);
    const shares = split(secret, 5, [1, 2, 3, 4, 5, 6, 7]);
    expect(combine(shares.slice(0, 4))).not.toEqual(secret);
  });

  it('refuses bad thresholds, repeated or out-of-range x-coordinates', () => {
    expect(() => split(randomBytes(4), 0, [1, 2])).toThrow(/threshold/);
    expect(() => split(randomBytes(4), 3, [1, 2])).toThrow(/threshold/);
    expect(() => split(randomBytes(4), 2, [1, 1])).toThrow(/distinct/);
    expect(() => split(randomBytes(4), 2, [0, 1])).toThrow(/1\.\.255/);
    const s = split(randomBytes(4), 2, [1, 2]);
    expect(() => combine([s[0]!, s[0]!])).toThrow(/duplicate/);
  });
});
