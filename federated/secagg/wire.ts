/**
 * Binary wire format of SecAgg+ device messages: a type byte, then length-prefixed fields (federated/bytes.ts `framed`);
 * a masked input's words travel as raw little-endian bytes, so its upload is 4·d bytes plus ~200. Decoding checks
 * every length and field and throws SecAggError naming what is malformed; it never trusts a length it read.
 * Work and memory are bounded by what a message can hold, not by what was sent: at most MAX_FIELDS frames, names
 * and ids of bounded length (errors quote them), and — given the round's `length` — a masked input of exactly
 * 4·length bytes, checked on the frame header before anything is copied (`maxMessageBytes` gives the route's cap).
 * Any input gives a DeviceMessage or a SecAggError, never another exception (property-tested).
 */
import { frameAt, framed, u32, u8, unframe } from '../bytes.ts';
import {
  type AdvertiseKeys,
  type DeviceMessage,
  type MaskedInput,
  type RevealedShare,
  SecAggError,
  type ShareKeys,
  type Unmask,
} from './messages.ts';

const TYPE = { 'advertise-keys': 1, 'share-keys': 2, 'masked-input': 3, unmask: 4 } as const;
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function encodeMessage(m: DeviceMessage): Uint8Array {
  let fields: (Uint8Array | string)[];
  switch (m.stage) {
    case 'advertise-keys':
      fields = [m.identityKey, m.encryptionKey, m.maskKey];
      break;
    case 'share-keys':
      fields = [m.selfMaskCommitment, String(m.ciphertexts.length), ...m.ciphertexts.flatMap((c) => [c.to, c.data])];
      break;
    case 'masked-input':
      fields = [u8(m.masked)];
      break;
    case 'unmask':
      fields = [String(m.shares.length), ...m.shares.flatMap((s) => [s.of, s.kind, String(s.x), s.y])];
      break;
  }
  const body = framed(m.roundId, m.from, m.signature, ...fields);
  const out = new Uint8Array(1 + body.byteLength);
  out[0] = TYPE[m.stage];
  out.set(body, 1);
  return out;
}

/** Most shares or ciphertexts in one message (Shamir over GF(2^8): at most 255 neighbours). */
const MAX_ITEMS = 255;
/** Frames in the largest message: head (3) + count + 4 per share of an unmask. */
const MAX_FIELDS = 3 + 1 + 4 * MAX_ITEMS;
/** Longest round id, device id or share kind, in bytes (device ids are ≤ 64 characters at the edge). */
const MAX_TEXT = 256;
/** Longest share ciphertext or share (a sealed pair of 32-byte shares is ~200 bytes). */
const MAX_BLOB = 1024;

/** Bytes of the largest well-formed message in a round whose masked inputs have `length` words. */
export function maxMessageBytes(length: number): number {
  const head = 1 + 3 * 4 + MAX_TEXT * 2 + 64;
  const masked = head + 4 + 4 * length;
  const shares = head + 4 + 3 + MAX_ITEMS * (4 * 4 + MAX_TEXT + 16 + 3 + MAX_BLOB);
  return Math.max(masked, shares);
}

export interface DecodeLimits {
  /** Words a masked input must have (the round's length). */
  length?: number;
}

function fields(bytes: Uint8Array): Uint8Array[] {
  const parts = unframe(bytes, MAX_FIELDS);
  if (!parts) throw new SecAggError('malformed message: a field runs past the end, or there are too many fields');
  return parts;
}

const text = (b: Uint8Array | undefined, what: string) => {
  if (!b) throw new SecAggError(`malformed message: missing ${what}`);
  if (b.byteLength > MAX_TEXT) throw new SecAggError(`malformed message: ${what} is longer than ${MAX_TEXT} bytes`);
  try {
    return dec.decode(b);
  } catch {
    throw new SecAggError(`malformed message: ${what} is not UTF-8`);
  }
};
const bytesOf = (b: Uint8Array | undefined, what: string, len?: number) => {
  if (!b || (len !== undefined && b.byteLength !== len))
    throw new SecAggError(`malformed message: ${what} must be ${len ?? 'present'} bytes`);
  if (b.byteLength > MAX_BLOB) throw new SecAggError(`malformed message: ${what} is longer than ${MAX_BLOB} bytes`);
  return b.slice();
};
const count = (b: Uint8Array | undefined, what: string, max: number) => {
  const n = Number(text(b, what));
  if (!Number.isInteger(n) || n < 0 || n > max) throw new SecAggError(`malformed message: bad ${what}`);
  return n;
};

/**
 * Stage, round, sender and signature of a message, read from its first bytes only (the route sends a message to
 * its shard's aggregator, and streams a masked input, before the body is read whole); `bodyOffset` is where the
 * message's own fields start (a masked input: one frame header, then its words). Throws SecAggError like
 * decodeMessage; the signature is not checked.
 */
export function messageHead(prefix: Uint8Array): {
  stage: DeviceMessage['stage'];
  roundId: string;
  from: string;
  signature: Uint8Array;
  bodyOffset: number;
} {
  if (!(prefix instanceof Uint8Array) || prefix.byteLength < 1) throw new SecAggError('malformed message: empty');
  const stage = (Object.keys(TYPE) as DeviceMessage['stage'][]).find((k) => TYPE[k] === prefix[0]);
  if (!stage) throw new SecAggError(`malformed message: unknown type ${prefix[0]}`);
  const names = ['round id', 'sender', 'signature'];
  const out: Uint8Array[] = [];
  let off = 1;
  for (const what of names) {
    const frame = frameAt(prefix, off);
    if (!frame.part && frame.claimed === undefined) throw new SecAggError('malformed message: the head is cut short');
    if (!frame.part || frame.part.byteLength > MAX_TEXT)
      throw new SecAggError(`malformed message: ${what} is longer than ${MAX_TEXT} bytes or cut short`);
    out.push(frame.part);
    off = frame.next;
  }
  return {
    stage,
    roundId: text(out[0], 'round id'),
    from: text(out[1], 'sender'),
    signature: bytesOf(out[2], 'signature', 64),
    bodyOffset: off,
  };
}

/** Bytes that always hold a message's head (type, round id, sender, signature) and a masked input's frame header. */
export const MESSAGE_HEAD_BYTES = 1 + 2 * (4 + MAX_TEXT) + 4 + 64 + 4;

export function decodeMessage(bytes: Uint8Array, limits: DecodeLimits = {}): DeviceMessage {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 1) throw new SecAggError('malformed message: empty');
  const f = fields(bytes.subarray(1));
  const head = {
    roundId: text(f[0], 'round id'),
    from: text(f[1], 'sender'),
    signature: bytesOf(f[2], 'signature', 64),
  };
  const rest = f.slice(3);
  switch (bytes[0]) {
    case TYPE['advertise-keys']:
      if (rest.length !== 3) throw new SecAggError('malformed message: advertise-keys needs 3 keys');
      return {
        ...head,
        stage: 'advertise-keys',
        identityKey: bytesOf(rest[0], 'identity key', 32),
        encryptionKey: bytesOf(rest[1], 'encryption key', 32),
        maskKey: bytesOf(rest[2], 'mask key', 32),
      } satisfies AdvertiseKeys;
    case TYPE['share-keys']: {
      const n = count(rest[1], 'ciphertext count', MAX_ITEMS);
      if (rest.length !== 2 + 2 * n) throw new SecAggError('malformed message: share-keys field count');
      const ciphertexts = Array.from({ length: n }, (_, i) => ({
        to: text(rest[2 + 2 * i], 'recipient'),
        data: bytesOf(rest[3 + 2 * i], 'ciphertext'),
      }));
      return {
        ...head,
        stage: 'share-keys',
        selfMaskCommitment: bytesOf(rest[0], 'commitment', 32),
        ciphertexts,
      } satisfies ShareKeys;
    }
    case TYPE['masked-input']: {
      const raw = rest[0];
      if (rest.length !== 1 || !raw || raw.byteLength % 4 !== 0)
        throw new SecAggError('malformed message: masked input must be whole 32-bit words');
      if (limits.length !== undefined && raw.byteLength !== 4 * limits.length)
        throw new SecAggError(
          `malformed message: a masked input of this round is ${limits.length} words (${4 * limits.length} bytes), got ${raw.byteLength} bytes`,
        );
      return { ...head, stage: 'masked-input', masked: u32(raw.slice(), 'masked input') } satisfies MaskedInput;
    }
    case TYPE.unmask: {
      const n = count(rest[0], 'share count', MAX_ITEMS);
      if (rest.length !== 1 + 4 * n) throw new SecAggError('malformed message: unmask field count');
      const shares: RevealedShare[] = Array.from({ length: n }, (_, i) => {
        const kind = text(rest[2 + 4 * i], 'share kind');
        if (kind !== 'self-mask' && kind !== 'mask-key') throw new SecAggError('malformed message: unknown share kind');
        return {
          of: text(rest[1 + 4 * i], 'share owner'),
          kind,
          x: count(rest[3 + 4 * i], 'share x', 255),
          y: bytesOf(rest[4 + 4 * i], 'share'),
        };
      });
      return { ...head, stage: 'unmask', shares } satisfies Unmask;
    }
    default:
      throw new SecAggError(`malformed message: unknown type ${bytes[0]}`);
  }
}
