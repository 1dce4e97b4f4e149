/**
 * Requests per client per minute through Workers' rate-limiting binding (limit set in wrangler.toml): the client is
 * the admin when the request carries the valid admin token, else its connecting address (client-key.ts), so random
 * tokens buy no fresh limit. Over the limit: 429 + Retry-After.
 */
import type { MiddlewareHandler } from 'hono';
import { fail } from './errors.ts';
import { bearerToken, clientAddress, isAdminToken } from './client-key.ts';
import { services } from '../services.ts';

export function rateLimit(): MiddlewareHandler<{ Bindings: Env }> {
  return async function rateLimit(c, next) {
    if (c.req.method === 'OPTIONS' || !services(c.env).config.rateLimit || !c.env.RATE_LIMITER) return next();
    const token = bearerToken(c);
    const key = token && (await isAdminToken(token, c.env.FEDGE_ADMIN_TOKEN)) ? 'admin' : `ip:${clientAddress(c)}`;
    const { success } = await c.env.RATE_LIMITER.limit({ key });
    if (!success)
      fail(429, 'too many requests from this client; slow down and retry after the Retry-After seconds', {
        'Retry-After': '60',
      });
    await next();
  };
}
