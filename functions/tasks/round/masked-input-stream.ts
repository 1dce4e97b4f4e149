/**
 * A masked input arriving as a stream, kept out of memory: its words go to the task's scratch table in chunks of
 * MASKED_CHUNK_BYTES as they arrive, hashed on the way (workerd's DigestStream) because a device signs the SHA-256
 * of its payload (secagg/messages.ts signingBytes). At most one chunk per request is in memory; the task adds the
 * chunks to its running sum only after the sender is authenticated with that digest.
 */
import { toBase64, u32 } from '../../../federated/bytes.ts';
import { randomBytes } from '../../../federated/random.ts';
import type { TaskStore } from '../task-store.ts';

/**
 * Bytes of one scratch row (whole words), the most of a masked input a request holds at once. Its own size, not the
 * route's stream chunks' (routes/task-devices.ts STREAM_CHUNK_BYTES): chunks arrive in whatever sizes and are re-cut here.
 */
export const MASKED_CHUNK_BYTES = 64 * 1024;

export type StreamedInput =
  | { ok: true; id: string; payloadDigest: Uint8Array; chunks: () => Iterable<Uint32Array> }
  | { ok: false; error: string };

/**
 * Reads `payload` (exactly 4·words bytes) into scratch rows under a fresh id. The caller deletes them
 * (`store.deleteScratch(id)`) when done — also when this returns an error after writing some.
 */
export async function streamToScratch(
  store: TaskStore,
  payload: ReadableStream<Uint8Array>,
  words: number,
  onId: (id: string) => void,
): Promise<StreamedInput> {
  const id = toBase64(randomBytes(12));
  onId(id);
  const hash = new crypto.DigestStream('SHA-256');
  const hashing = hash.getWriter();
  const pending = new Uint8Array(MASKED_CHUNK_BYTES);
  let fill = 0,
    index = 0,
    total = 0;
  const flush = () => {
    if (fill) store.addScratch(id, index++, pending.slice(0, fill));
    fill = 0;
  };
  const wrongSize = (got: string): StreamedInput => ({
    ok: false,
    error: `not a SecAgg+ message: malformed message: a masked input of this round is ${words} words (${4 * words} bytes), got ${got}`,
  });
  const reader = payload.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > 4 * words) {
      await reader.cancel();
      return wrongSize('more');
    }
    await hashing.write(value);
    for (let off = 0; off < value.byteLength; ) {
      const n = Math.min(value.byteLength - off, MASKED_CHUNK_BYTES - fill);
      pending.set(value.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === MASKED_CHUNK_BYTES) flush();
    }
  }
  flush();
  await hashing.close();
  if (total !== 4 * words) return wrongSize(`${total} bytes`);
  const chunks = function* () {
    for (const c of store.scratch(id)) yield u32(c, 'masked input scratch row');
  };
  return { ok: true, id, payloadDigest: new Uint8Array(await hash.digest), chunks };
}
