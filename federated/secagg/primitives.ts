/**
 * The public-key and symmetric primitives SecAgg+ uses, one wire format whichever implementation runs:
 *  - X25519 (RFC 7748) key agreement and Ed25519 (RFC 8032) signatures: Web Crypto where the runtime has them
 *    (Node ≥ 22, workerd, current browsers; ~10× faster than JavaScript), else tweetnacl. Keys travel as the raw
 *    32-byte encodings both produce; signatures as the raw 64 bytes.
 *  - XSalsa20-Poly1305 (tweetnacl secretbox) for the device-to-device share ciphertexts.
 *  - SHA-256 (Web Crypto) for key derivation with labelled, framed inputs.
 * Private keys are 32 random bytes (an X25519 scalar before clamping, an Ed25519 seed); PKCS#8 wrapping for
 * Web Crypto is a fixed 16-byte prefix (RFC 8410 §7).
 */
import nacl from 'tweetnacl';
import { bufferSource as bs, concat, framed, fromBase64Url } from '../bytes.ts';
import { randomBytes } from '../random.ts';

const subtle = crypto.subtle;
const PKCS8_X25519 = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const PKCS8_ED25519 = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

let webX25519: Promise<boolean> | undefined;
let webEd25519: Promise<boolean> | undefined;

/** Whether Web Crypto here does X25519 / Ed25519 (checked once by using them). */
export function webCryptoSupport(): Promise<{ x25519: boolean; ed25519: boolean }> {
  const works = (p: Promise<unknown>) =>
    p.then(
      () => true,
      () => false,
    );
  webX25519 ??= works(
    subtle.importKey('pkcs8', bs(concat(PKCS8_X25519, new Uint8Array(32).fill(7))), { name: 'X25519' }, false, [
      'deriveBits',
    ]),
  );
  webEd25519 ??= works(
    subtle.importKey('pkcs8', bs(concat(PKCS8_ED25519, new Uint8Array(32).fill(7))), { name: 'Ed25519' }, false, [
      'sign',
    ]),
  );
  return Promise.all([webX25519, webEd25519]).then(([x25519, ed25519]) => ({ x25519, ed25519 }));
}

/** Forces the JavaScript implementations (tests check both give the same bytes). */
export function useJavaScriptOnly(on: boolean): void {
  webX25519 = on ? Promise.resolve(false) : undefined;
  webEd25519 = on ? Promise.resolve(false) : undefined;
}

export async function x25519PublicKey(privateKey: Uint8Array): Promise<Uint8Array> {
  if ((await webCryptoSupport()).x25519) {
    const key = await subtle.importKey('pkcs8', bs(concat(PKCS8_X25519, privateKey)), { name: 'X25519' }, true, [
      'deriveBits',
    ]);
    const jwk = (await subtle.exportKey('jwk', key)) as JsonWebKey;
    return fromBase64Url(jwk.x!);
  }
  return nacl.scalarMult.base(privateKey);
}

/**
 * Imported Web Crypto keys, reused: a server removing a dropped device's masks agrees its one reconstructed key
 * with every neighbour's public key, and importing costs as much as agreeing. Bounded; oldest entry evicted.
 */
class KeyCache {
  readonly #map = new Map<string, Promise<CryptoKey>>();
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  get(bytes: Uint8Array, load: () => Promise<CryptoKey>): Promise<CryptoKey> {
    const id = String.fromCharCode(...bytes);
    let key = this.#map.get(id);
    if (!key) {
      if (this.#map.size >= this.#limit) this.#map.delete(this.#map.keys().next().value!);
      key = load();
      key.catch(() => this.#map.delete(id));
      this.#map.set(id, key);
    }
    return key;
  }
}
const x25519Private = new KeyCache(64);
const x25519Public = new KeyCache(4096);

/** The raw 32-byte X25519 shared secret. Refuses an all-zero result (a low-order public key). */
export async function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
  let shared: Uint8Array;
  if ((await webCryptoSupport()).x25519) {
    const priv = await x25519Private.get(privateKey, () =>
      subtle.importKey('pkcs8', bs(concat(PKCS8_X25519, privateKey)), { name: 'X25519' }, false, ['deriveBits']),
    );
    const pub = await x25519Public.get(publicKey, () =>
      subtle.importKey('raw', bs(publicKey), { name: 'X25519' }, false, []),
    );
    try {
      shared = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub } as never, priv, 256));
    } catch {
      throw new Error('X25519: the peer public key gives an all-zero shared secret');
    }
  } else {
    shared = nacl.scalarMult(privateKey, publicKey);
  }
  if (shared.every((b) => b === 0)) throw new Error('X25519: the peer public key gives an all-zero shared secret');
  return shared;
}

export async function ed25519PublicKey(seed: Uint8Array): Promise<Uint8Array> {
  if ((await webCryptoSupport()).ed25519) {
    const key = await subtle.importKey('pkcs8', bs(concat(PKCS8_ED25519, seed)), { name: 'Ed25519' }, true, ['sign']);
    return fromBase64Url(((await subtle.exportKey('jwk', key)) as JsonWebKey).x!);
  }
  return nacl.sign.keyPair.fromSeed(seed).publicKey;
}

export async function sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  if ((await webCryptoSupport()).ed25519) {
    const key = await subtle.importKey('pkcs8', bs(concat(PKCS8_ED25519, seed)), { name: 'Ed25519' }, false, ['sign']);
    return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, key, bs(message)));
  }
  return nacl.sign.detached(message, nacl.sign.keyPair.fromSeed(seed).secretKey);
}

const verifyKeys = new KeyCache(10_000);

export async function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (publicKey.byteLength !== 32 || signature.byteLength !== 64) return false;
  if ((await webCryptoSupport()).ed25519) {
    // Servers verify many messages from the same devices: keep imported keys (bounded).
    try {
      const key = await verifyKeys.get(publicKey, () =>
        subtle.importKey('raw', bs(publicKey), { name: 'Ed25519' }, false, ['verify']),
      );
      return await subtle.verify({ name: 'Ed25519' }, key, bs(signature), bs(message));
    } catch {
      return false;
    }
  }
  return nacl.sign.detached.verify(message, signature, publicKey);
}

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle.digest('SHA-256', bs(data)));
}

/** A 32-byte key for one purpose: SHA-256 over the label and context, framed so no two inputs collide. */
export function deriveKey(label: string, ...context: (Uint8Array | string)[]): Promise<Uint8Array> {
  return sha256(framed('fedge-secagg/v1', label, ...context));
}

/** XSalsa20-Poly1305 with a fresh random nonce, sent in front of the ciphertext. */
export function seal(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = randomBytes(nacl.secretbox.nonceLength);
  return concat(nonce, nacl.secretbox(plaintext, nonce, key));
}

export function open(key: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  if (sealed.byteLength < nacl.secretbox.nonceLength + nacl.secretbox.overheadLength) return null;
  return nacl.secretbox.open(
    sealed.subarray(nacl.secretbox.nonceLength),
    sealed.subarray(0, nacl.secretbox.nonceLength),
    key,
  );
}
