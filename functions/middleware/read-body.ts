/**
 * Reads a request body bounded in size, in time and in what one isolate holds at once.
 * - size: `maxBytes` counted on the bytes that arrive (a missing or lying Content-Length changes nothing) → 413;
 * - time: the whole body must arrive within `timeoutMs`, so a client trickling one byte every few seconds costs
 *   itself the request, not the isolate (or the Durable Object behind it) its attention → 408;
 * - memory: bodies being read in this isolate share one byte budget; a request whose declared length does not fit
 *   waits (first come, first served) until earlier bodies are consumed, inside its own deadline — so sixteen 8 MiB
 *   uploads at once queue instead of all sitting in memory (the Workers isolate has 128 MB) → 429 + Retry-After
 *   when it cannot get in before the deadline.
 * Slowloris and body-flood defences as nginx's `client_body_timeout` / `client_max_body_size` apply them.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { fail } from './errors.ts';
import { discard } from './drain-body.ts';

export interface ReadBodyOptions {
  maxBytes: number;
  /** Names the body in errors ("inference request", "model upload"). */
  what: string;
  /** The whole body must arrive within this (default 30 s). */
  timeoutMs?: number;
}

/** Least a refused body is drained (read and dropped, never held), whatever the route's limit. */
export const MIN_DRAIN_BYTES = 64 * 1024 * 1024;

/** A body declared at most this long is read in one call (no chunk loop). */
const WHOLE_READ_BYTES = 1024 * 1024;

/** Bytes of request bodies this isolate holds while reading them (and until the caller is done with them). */
export const INFLIGHT_BODY_BYTES = 48 * 1024 * 1024;

/** Bytes shared by bodies being read: acquire waits (first come, first served among those that do not fit) until released. */
export class ByteBudget {
  #free: number;
  readonly #waiting: { bytes: number; resolve: () => void }[] = [];

  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#free = capacity;
  }

  /** Resolves once `bytes` are reserved; rejects with 'timeout' when `signal` fires first. */
  acquire(bytes: number, signal: AbortSignal): Promise<void> {
    const want = Math.min(bytes, this.capacity);
    // Whoever fits goes at once: a small inference does not queue behind a large upload that is waiting for room.
    if (this.#free >= want) {
      this.#free -= want;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = { bytes: want, resolve: () => (signal.removeEventListener('abort', onAbort), resolve()) };
      const onAbort = () => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        this.#drain();
        reject(new Error('timeout'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(entry);
    });
  }

  release(bytes: number): void {
    this.#free = Math.min(this.capacity, this.#free + Math.min(bytes, this.capacity));
    this.#drain();
  }

  #drain(): void {
    while (this.#waiting.length && this.#free >= this.#waiting[0]!.bytes) {
      const next = this.#waiting.shift()!;
      this.#free -= next.bytes;
      next.resolve();
    }
  }
}

const budget = new ByteBudget(INFLIGHT_BODY_BYTES);

/**
 * The body of `c`'s request. The bytes it reserved in the isolate's budget are given back when the handler is done
 * (bodyBudget middleware), so a handler that keeps the body while it works keeps it counted.
 */
export async function readBody(c: Context, opts: ReadBodyOptions): Promise<Uint8Array> {
  const { maxBytes, what } = opts;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const declaredHeader = c.req.header('Content-Length');
  const declared = declaredHeader !== undefined && /^\d+$/.test(declaredHeader) ? Number(declaredHeader) : undefined;
  const body = c.req.raw.body;
  const tooLarge = (): never => fail(413, `${what} is larger than the ${maxBytes} bytes allowed`);
  // A refused body is drained (drain-body.ts) up to this much, so the 413 reaches the client instead of a reset
  // connection: a client, or a proxy in front (wrangler dev's turns a reset into a 500), still sending finds the
  // answer waiting. Past it, the connection is dropped: whoever sends more only loses their own connection.
  const drainBytes = Math.max(2 * maxBytes, MIN_DRAIN_BYTES);
  if (declared !== undefined && declared > maxBytes) {
    if (body) await discard(body, declared <= drainBytes ? declared : 0, timeoutMs);
    tooLarge();
  }
  if (!body) return new Uint8Array(0);

  const startedAt = Date.now();
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  // Reserve what the client declared (or a first slice when it declared nothing); grow the reservation as bytes come.
  let reserved = Math.min(declared ?? 64 * 1024, maxBytes);
  try {
    await budget.acquire(reserved, deadline.signal);
  } catch {
    clearTimeout(timer);
    await body.cancel().catch(() => undefined);
    fail(429, `the server is busy reading other requests; retry the ${what} shortly`, { 'Retry-After': '1' });
  }
  let released = false;
  const release = () => {
    if (!released) (released = true), budget.release(reserved);
  };
  // Released by the bodyBudget middleware once the handler has answered (or thrown).
  queueRelease(c, release);
  const timedOut = new Promise<'timeout'>((resolve) =>
    deadline.signal.addEventListener('abort', () => resolve('timeout'), { once: true }),
  );
  const late: (received: string) => never = (received) =>
    fail(408, `${what} did not arrive within ${Math.round(timeoutMs / 1000)} s (${received})`);

  if (declared !== undefined && declared <= WHOLE_READ_BYTES) {
    // Small and declared (an inference): one native read, under the same deadline. HTTP framing holds the body to
    // its Content-Length, and the size is checked again on what came, so a lie gains nothing. The chunk loop
    // below costs more than the model run for a 10 KB body (bench:profile).
    try {
      const whole = await Promise.race([c.req.raw.arrayBuffer(), timedOut]);
      if (whole === 'timeout') late(`${declared} bytes declared`);
      if (whole.byteLength > maxBytes) tooLarge();
      return new Uint8Array(whole);
    } catch (e) {
      release();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next === 'timeout') {
        void reader.cancel().catch(() => undefined);
        late(`${total} bytes received`);
      }
      if (next.done) break;
      total += next.value.byteLength;
      if (total > maxBytes) {
        release();
        reader.releaseLock();
        await discard(body, drainBytes - total, Math.max(0, timeoutMs - (Date.now() - startedAt)));
        tooLarge();
      }
      if (total > reserved) {
        const more = Math.min(Math.max(total - reserved, reserved), maxBytes - reserved);
        try {
          await budget.acquire(more, deadline.signal);
        } catch {
          void reader.cancel().catch(() => undefined);
          late(`${total} bytes received`);
        }
        reserved += more;
      }
      chunks.push(next.value);
    }
  } catch (e) {
    release();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

const pending = new WeakMap<Context, (() => void)[]>();

function queueRelease(c: Context, release: () => void): void {
  const list = pending.get(c);
  if (list) list.push(release);
  else pending.set(c, [release]);
}

/** Gives back the body bytes a request reserved once its handler has answered or thrown (app.ts runs it first). */
export function bodyBudget(): MiddlewareHandler {
  return async function bodyBudget(c, next) {
    try {
      await next();
    } finally {
      for (const release of pending.get(c) ?? []) release();
      pending.delete(c);
    }
  };
}
