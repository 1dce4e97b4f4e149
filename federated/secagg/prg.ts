/**
 * Mask expansion: a 32-byte key → `length` words of Z_2^32, the AES-256-CTR keystream of that key (counter block
 * starting at zero). Every key is used for exactly one mask (keys are derived per round, pair and purpose), so a
 * fixed counter start is safe. Words are read little-endian.
 * Web Crypto's AES-CTR is the default everywhere (workerd, browsers, Node). A host may install a faster keystream
 * with `useKeystream` — the server in Node installs node:crypto's, ~2.5× faster than Web Crypto there — as long as
 * it is the same AES-256-CTR: the bytes, and so the masks, are identical whichever runs.
 */
import { bufferSource, dataView, u32 } from '../bytes.ts';
export type Keystream = (key: Uint8Array, bytes: number) => Promise<Uint8Array> | Uint8Array;

const CHUNK_WORDS = 1 << 22; // 16 MiB per encrypt call
let zeros = new Uint8Array(0);

async function webCryptoKeystream(key: Uint8Array, bytes: number): Promise<Uint8Array> {
  const aes = await crypto.subtle.importKey('raw', bufferSource(key), { name: 'AES-CTR' }, false, ['encrypt']);
  const out = new Uint8Array(bytes);
  for (let start = 0; start < bytes; start += CHUNK_WORDS * 4) {
    const len = Math.min(CHUNK_WORDS * 4, bytes - start);
    if (zeros.byteLength < len) zeros = new Uint8Array(len);
    // Counter = index of this chunk's first 16-byte block, big-endian in the low 64 bits.
    const counter = new Uint8Array(16);
    dataView(counter).setBigUint64(8, BigInt(start / 16), false);
    const stream = await crypto.subtle.encrypt({ name: 'AES-CTR', counter, length: 64 }, aes, zeros.subarray(0, len));
    if (len === bytes) return new Uint8Array(stream);
    out.set(new Uint8Array(stream), start);
  }
  return out;
}

let keystream: Keystream = webCryptoKeystream;

/** Installs another AES-256-CTR implementation (same output); `undefined` restores Web Crypto. */
export function useKeystream(impl: Keystream | undefined): void {
  keystream = impl ?? webCryptoKeystream;
}

export async function expandMask(key: Uint8Array, length: number): Promise<Uint32Array> {
  if (key.byteLength !== 32) throw new Error(`mask key must be 32 bytes, got ${key.byteLength}`);
  const bytes = await keystream(key, length * 4);
  // A keystream may hand back a view at any offset (node:crypto's Buffers come from a shared pool): copy to align.
  return u32(bytes.byteOffset % 4 === 0 ? bytes : bytes.slice(), 'mask keystream');
}

/** target += sign · mask (mod 2^32), in place. */
export function addMask(target: Uint32Array, mask: Uint32Array, sign: 1 | -1): void {
  if (sign === 1) for (let i = 0; i < target.length; i++) target[i] = (target[i]! + mask[i]!) >>> 0;
  else for (let i = 0; i < target.length; i++) target[i] = (target[i]! - mask[i]!) >>> 0;
}
