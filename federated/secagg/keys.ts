/** Per-round key derivations shared by devices and server (labels make every key single-purpose). */
import { deriveKey, x25519 } from './primitives.ts';

/** A fixed X25519 scalar: clamped, so agreement with it is all-zero exactly for low-order points. */
const PROBE = new Uint8Array(32).fill(0x5a);

/**
 * Whether an advertised X25519 public key can be agreed with: a low-order point gives an all-zero shared secret
 * (x25519 refuses it), which would make every mask or share key with that device fail later — at its neighbours
 * and at the server's unmasking. Checked when the key is advertised.
 */
export async function usablePublicKey(publicKey: Uint8Array): Promise<boolean> {
  if (publicKey.byteLength !== 32) return false;
  try {
    await x25519(PROBE, publicKey);
    return true;
  } catch {
    return false;
  }
}

const ordered = (a: string, b: string) => (a < b ? [a, b] : [b, a]);

/** Key of the pairwise mask between a and b (Bonawitz et al. 2017, §4: s_{u,v} = KA.agree(s_u^SK, s_v^PK)). */
export async function pairwiseMaskKey(
  roundId: string,
  me: string,
  peer: string,
  mySecret: Uint8Array,
  peerPublic: Uint8Array,
): Promise<Uint8Array> {
  return deriveKey('pairwise-mask', roundId, ...ordered(me, peer), await x25519(mySecret, peerPublic));
}

/** +1 for the smaller id, −1 for the larger: the two masks of a pair cancel in the sum. */
export const pairSign = (me: string, peer: string): 1 | -1 => (me < peer ? 1 : -1);

export function selfMaskKey(roundId: string, device: string, seed: Uint8Array): Promise<Uint8Array> {
  return deriveKey('self-mask', roundId, device, seed);
}

export async function shareEncryptionKey(
  roundId: string,
  me: string,
  peer: string,
  mySecret: Uint8Array,
  peerPublic: Uint8Array,
): Promise<Uint8Array> {
  return deriveKey('share-encryption', roundId, ...ordered(me, peer), await x25519(mySecret, peerPublic));
}
