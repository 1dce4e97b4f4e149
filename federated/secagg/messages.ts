/**
 * SecAgg+ messages and what each signature covers. Every device message is Ed25519-signed over
 * (protocol, round id, stage, sender, payload digest), so a message cannot be replayed into another round or
 * stage, attributed to another device, or altered in transit (the server only relays). The server's own
 * messages are not signed: devices check what they can (their own graph, thresholds, their presence).
 */
import { framed, u8, utf8 } from '../bytes.ts';
import { sha256 } from './primitives.ts';

/** Bytes of every secret that is Shamir-shared (an X25519 private key, a self-mask seed). */
export const SECRET_BYTES = 32;

export type Stage = 'advertise-keys' | 'share-keys' | 'masked-input' | 'unmask';

/** Public round parameters, fixed by the server before the first stage. */
export interface RoundConfig {
  roundId: string;
  /** k: neighbours per device (even; ≥ n − 1 means everyone). */
  neighbours: number;
  /** t: shares needed to reconstruct a device's secret. */
  threshold: number;
  /** Public seed of the neighbour graph, 32 bytes. */
  graphSeed: Uint8Array;
  /** Words (Z_2^32) in each device's input vector. */
  length: number;
  /**
   * Fewest contributors the round accepts (devices hold it to at least 3, round-policy.ts): a device does not go on
   * with a roster, or reveal shares for a survivor list, smaller than this.
   */
  minContributors?: number;
}

interface Signed {
  roundId: string;
  from: string;
  signature: Uint8Array;
}

export interface AdvertiseKeys extends Signed {
  stage: 'advertise-keys';
  /** Ed25519 public key the signatures verify with (the server checks it is the enrolled one). */
  identityKey: Uint8Array;
  /** X25519 key for share encryption (c_u) and for pairwise masks (s_u). */
  encryptionKey: Uint8Array;
  maskKey: Uint8Array;
}

export interface ShareKeys extends Signed {
  stage: 'share-keys';
  /** SHA-256 of the self-mask seed, so the server can check what it reconstructs. */
  selfMaskCommitment: Uint8Array;
  /** One XSalsa20-Poly1305 ciphertext per neighbour: the sender's shares for that neighbour to hold. */
  ciphertexts: { to: string; data: Uint8Array }[];
}

export interface MaskedInput extends Signed {
  stage: 'masked-input';
  masked: Uint32Array;
}

export interface RevealedShare {
  /** The device whose secret this is a share of. */
  of: string;
  kind: 'self-mask' | 'mask-key';
  x: number;
  y: Uint8Array;
}

export interface Unmask extends Signed {
  stage: 'unmask';
  shares: RevealedShare[];
}

export type DeviceMessage = AdvertiseKeys | ShareKeys | MaskedInput | Unmask;

/** Server → one device, after advertise-keys: who is in the round, and the neighbours' signed keys. */
export interface KeysBroadcast {
  roundId: string;
  roster: string[];
  neighbours: AdvertiseKeys[];
}

/** Server → one device, after share-keys: the ciphertexts its neighbours addressed to it. */
export interface SharesDelivery {
  roundId: string;
  ciphertexts: { from: string; data: Uint8Array }[];
}

/** Server → every device, after masked-input: whose masked input arrived. */
export interface UnmaskRequest {
  roundId: string;
  survivors: string[];
}

export class SecAggError extends Error {
  override name = 'SecAggError';
}

/** A message whose sender is not who it claims, or may not speak in this round: not enrolled, another key, off the roster, a bad signature. */
export class SecAggAuthError extends SecAggError {
  override name = 'SecAggAuthError';
}

/** The round cannot produce a sum; nothing partial is released. */
export class SecAggAbort extends Error {
  override name = 'SecAggAbort';
  /** The reason with the devices it concerns named — for the operator; the message names none (it is public). */
  readonly detail: string | undefined;
  constructor(message: string, detail?: string) {
    super(message);
    this.detail = detail;
  }
}

async function payloadDigest(m: DeviceMessage): Promise<Uint8Array> {
  switch (m.stage) {
    case 'advertise-keys':
      return framed(m.identityKey, m.encryptionKey, m.maskKey);
    case 'share-keys':
      return framed(m.selfMaskCommitment, ...m.ciphertexts.flatMap((c) => [utf8(c.to), c.data]));
    case 'masked-input':
      return sha256(u8(m.masked));
    case 'unmask':
      return framed(...m.shares.flatMap((s) => [s.of, s.kind, String(s.x), s.y]));
  }
}

/** What a device signs. `digest`: the payload's digest when it is already known (a masked input that streamed in). */
export async function signingBytes(m: DeviceMessage, digest?: Uint8Array): Promise<Uint8Array> {
  return framed('fedge-secagg/v1 message', m.roundId, m.stage, m.from, digest ?? (await payloadDigest(m)));
}
