/**
 * Request body caps per route: the body is read here, bounded in size (413), time (408) and the isolate's in-flight
 * byte budget (read-body.ts), before the handler runs; handlers then take it from `c.req.arrayBuffer()` / `json()`
 * as usual (Hono's body cache), so no route reads an unbounded body by accident.
 */
import type { MiddlewareHandler } from 'hono';
import type { Config } from '../config.ts';
import { readBody } from './read-body.ts';
import { services } from '../services.ts';

export function limitBody(pick: (config: Config) => number, what: string): MiddlewareHandler<{ Bindings: Env }> {
  return async function limitBody(c, next) {
    const { config } = services(c.env);
    const bytes = await readBody(c, { maxBytes: pick(config), what, timeoutMs: config.bodyTimeoutMs });
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    // Hono's body cache holds the pending read of each body type; `arrayBuffer()`, `json()` and `text()` use it.
    (c.req.bodyCache as { arrayBuffer?: Promise<ArrayBuffer> }).arrayBuffer = Promise.resolve(
      whole.buffer as ArrayBuffer,
    );
    await next();
  };
}
