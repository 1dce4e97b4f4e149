/**
 * Reading what is left of a request body without keeping it. A server that answers before the client finished
 * sending (a 401 before an upload, a 413 on a declared size, a 404 for a POST) must drain the rest or close the
 * connection; workerd closes it, and a keep-alive client that already queued its next request on that connection
 * sees it reset — a valid request lost because of someone else's bad one. Draining is bounded in bytes and time
 * (nginx's lingering close does the same), so a client that keeps sending only loses its own connection.
 */
import type { MiddlewareHandler } from 'hono';

/** Reads and drops up to `maxBytes` within `timeoutMs`; past either bound the stream is cancelled. */
export async function discard(body: ReadableStream<Uint8Array>, maxBytes: number, timeoutMs: number): Promise<void> {
  const reader = body.getReader();
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next === 'timeout' || next.done) break;
      total += next.value.byteLength;
      if (total > maxBytes) break;
    }
  } catch {
    /* the client went away: nothing left to drain */
  } finally {
    clearTimeout(timer);
    void reader.cancel().catch(() => undefined);
  }
}

const DRAIN_BYTES = 1024 * 1024;
const DRAIN_MS = 2000;

/** After the handler answered: drains a body nobody read (a refusal before the body mattered). */
export function drainUnreadBody(): MiddlewareHandler {
  return async function drainUnreadBody(c, next) {
    await next();
    const body = c.req.raw.body;
    if (body && !c.req.raw.bodyUsed && !body.locked) await discard(body, DRAIN_BYTES, DRAIN_MS);
  };
}
