/**
 * What devices call: enroll (with the task's enrollment token; the operator revokes), download the global weights, send SecAgg+ messages
 * (binary wire format) and read what the server relays to them after each stage. Bodies are read here, bounded in
 * size and time (read-body.ts), before the task's object sees them — a message trickled byte by byte costs its
 * sender the request, never the task's queue; a message's cap follows the task's d.
 */
import { enrollBody } from '../contract/schemas/task-bodies.ts';
import type { taskRoutes } from '../contract/tasks.ts';
import { readBody } from '../middleware/read-body.ts';
import { fail } from '../middleware/errors.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { readJson } from '../middleware/json-body.ts';
import { checkName, isName } from './names.ts';
import { clientAddress } from '../middleware/client-key.ts';
import { sha256Hex } from '../../federated/model/digest.ts';
import { services } from '../services.ts';
import { MAX_RELAY_WAIT_SECONDS } from '../../federated/aggregation/task-protocol.ts';
import { frameAt, fromBase64 } from '../../federated/bytes.ts';
import { DEVICE_SIGNATURE_HEADER, EPSILON_SPENT_HEADER, WEIGHTS_VERSION_HEADER } from '../../federated/http/headers.ts';
import { MESSAGE_HEAD_BYTES, messageHead } from '../../federated/secagg/wire.ts';
import { SecAggError } from '../../federated/secagg/messages.ts';
import type { Handler } from './register.ts';
import { task, tokenDigest, unwrap } from './task-access.ts';

type Routes = typeof taskRoutes;

export const enrollDevice: Handler<Routes['enrollDevice']> = async (c) => {
  const t = await task(c);
  const token = c.req
    .header('Authorization')
    ?.match(/^Bearer\s+(.+)$/i)?.[1]
    ?.trim();
  if (!token) fail(401, 'enrollment token required: send Authorization: Bearer <token>');
  const body = await readJson(c, enrollBody);
  let key: Uint8Array;
  try {
    key = fromBase64(body.identityKey);
  } catch {
    fail(400, 'identityKey: not base64');
  }
  if (key.byteLength !== 32) fail(400, `identityKey: an Ed25519 public key is 32 bytes, got ${key.byteLength}`);
  // The task keeps a salted digest of the client's address (its per-address cap), never the address.
  const address = await sha256Hex(
    new TextEncoder().encode(`fedge-enrollment-address/v1\0${t.name}\0${clientAddress(c)}`),
  );
  const r = unwrap(
    await t.enroll(await tokenDigest(token), body.device, key, { address, credential: body.credential }),
  );
  return c.json({ task: c.req.param('task'), device: body.device, enrolled: true }, r.enrolled ? 201 : 200);
};

export const revokeDevice: Handler<Routes['revokeDevice']> = async (c) => {
  const t = await task(c);
  const device = c.req.param('device')!;
  if (!isName(device)) fail(404, 'no such device in this task');
  unwrap(await t.revoke(device));
  return c.json({ task: t.name, device, revoked: true as const });
};

export const postMessage: Handler<Routes['postMessage']> = async (c) => {
  requireContentType(c, 'application/octet-stream', 'the SecAgg+ message');
  const spent = c.req.header(EPSILON_SPENT_HEADER);
  const epsilon = spent === undefined ? undefined : Number(spent);
  if (epsilon !== undefined && !(epsilon >= 0 && Number.isFinite(epsilon)))
    fail(400, `${EPSILON_SPENT_HEADER} must be a non-negative number`);
  const t = await task(c);
  // Read whole, bounded by the largest message this task's rounds take and by time, before the task's queue.
  const body = await readBody(c, {
    maxBytes: t.entry.maxMessageBytes,
    what: 'SecAgg+ message',
    timeoutMs: services(c.env).config.bodyTimeoutMs,
  });
  if (!body.byteLength) fail(400, 'not a SecAgg+ message: the body is empty');
  const head = headOf(body);
  const r = unwrap(
    await t.receive(
      head.stage === 'masked-input'
        ? {
            stage: head.stage,
            head: { roundId: head.roundId, from: head.from, signature: head.signature },
            words: chunked(maskedWords(body, head.bodyOffset)),
          }
        : { stage: head.stage, head, bytes: body },
      epsilon,
    ),
  );
  return c.json(r, r.duplicate ? 200 : 202);
};

function headOf(body: Uint8Array): ReturnType<typeof messageHead> {
  try {
    return messageHead(body.subarray(0, MESSAGE_HEAD_BYTES));
  } catch (e) {
    if (e instanceof SecAggError) fail(400, `not a SecAgg+ message: ${e.message}`);
    throw e;
  }
}

/** A masked input's words: its one frame after the head, which must end the body. */
function maskedWords(body: Uint8Array, offset: number): Uint8Array {
  const frame = frameAt(body, offset);
  if (!frame.part || frame.next !== body.byteLength)
    fail(400, 'not a SecAgg+ message: malformed message: a masked input is one frame of words that ends the message');
  return frame.part;
}

/**
 * Chunks the task's object reads one at a time (it never holds a masked input whole). Not its scratch rows' size
 * (tasks/masked-input-stream.ts MASKED_CHUNK_BYTES): the object re-cuts whatever arrives.
 */
const STREAM_CHUNK_BYTES = 64 * 1024;
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (off >= bytes.byteLength) return controller.close();
        controller.enqueue(bytes.slice(off, off + STREAM_CHUNK_BYTES));
        off += STREAM_CHUNK_BYTES;
      },
    },
    { highWaterMark: 0 },
  );
}

export function relay(kind: 'broadcast' | 'delivery' | 'unmask'): Handler<Routes['getBroadcastRelay']> {
  return async (c) => {
    const round = Number(c.req.param('round'));
    if (!Number.isInteger(round) || round < 1)
      fail(400, `round must be a positive integer, got '${c.req.param('round')}'`);
    const device = c.req.query('device');
    if (!device) fail(400, 'query parameter device is required');
    checkName(device, 'device');
    const wait = c.req.query('wait') === undefined ? 0 : Number(c.req.query('wait'));
    if (!(wait >= 0 && wait <= MAX_RELAY_WAIT_SECONDS))
      fail(400, `wait must be a number of seconds from 0 to ${MAX_RELAY_WAIT_SECONDS}`);
    const header = c.req.header(DEVICE_SIGNATURE_HEADER);
    let signature: Uint8Array | undefined;
    if (header !== undefined) {
      try {
        signature = fromBase64(header.trim());
      } catch {
        fail(400, `${DEVICE_SIGNATURE_HEADER}: not base64`);
      }
    }
    const r = await (await task(c)).relay(kind, round, device, signature, wait);
    // A long poll that ended with the stage still open is no error: 204, ask again (425 answers a plain poll).
    if (wait > 0 && 'refused' in r && r.refused.status === 425) return c.body(null, 204);
    return c.json(unwrap(r).json);
  };
}

export const getWeights: Handler<Routes['getWeights']> = async (c) => {
  const r = unwrap(await (await task(c)).weights());
  const etag = `"w${r.version}"`;
  if (c.req.header('If-None-Match') === etag) return c.body(null, 304, { ETag: etag });
  return c.body(r.bytes as Uint8Array<ArrayBuffer>, 200, {
    'Content-Type': 'application/octet-stream',
    ETag: etag,
    [WEIGHTS_VERSION_HEADER]: String(r.version),
  });
};
