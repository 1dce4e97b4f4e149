/**
 * Requests per client per minute through Workers' rate-limiting binding (limit set in wrangler.toml).
 * The client is its bearer token when it sends one, else its connecting IP. Over the limit: 429 + Retry-After.
 */
import type { MiddlewareHandler } from 'hono';
import { fail } from './errors.ts';
import { services } from '../services.ts';

export function rateLimit(): MiddlewareHandler<{ Bindings: Env }> {
  return async function rateLimit(c, next) {
    if (c.req.method === 'OPTIONS' || !services(c.env).config.rateLimit || !c.env.RATE_LIMITER) return next();
    const token = c.req.header('Authorization')?.replace(/^Bearer\s+/i, '');
    const key = token ? `token:${token.slice(0, 64)}` : `ip:${c.req.header('CF-Connecting-IP') ?? 'unknown'}`;
    const { success } = await c.env.RATE_LIMITER.limit({ key });
    if (!success) fail(429, 'too many requests from this client; slow down and retry after the Retry-After seconds', { 'Retry-After': '60' });
    await next();
  };
}
