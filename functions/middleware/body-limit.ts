/** Request body caps (413 as JSON); the size comes from config so each route picks its own limit. */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { type Config } from '../config.ts';
import { errorJson } from './errors.ts';
import { services } from '../services.ts';

export function limitBody(pick: (config: Config) => number, what: string): MiddlewareHandler<{ Bindings: Env }> {
  return async function limitBody(c, next) {
    const maxSize = pick(services(c.env).config);
    return bodyLimit({ maxSize, onError: (c) => errorJson(c, 413, `${what} is larger than the ${maxSize} bytes allowed`) })(c, next);
  };
}
