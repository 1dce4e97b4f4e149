/**
 * CORS for web apps calling the edge from their own origins (allowed origins: FEDGE_CORS_ORIGINS).
 * The headers page scripts send and read are one list (federated/http/headers.ts) that the SDK uses too.
 * Admin routes answer a cross-origin browser only when its origin is listed by name: `*` opens inference and device
 * routes to every page, never the admin API, and the opaque origin `null` (sandboxed frames, file:// pages) is never
 * allowed there — a page cannot hand a leaked admin token to the edge from anywhere on the web.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { REQUEST_HEADERS, RESPONSE_HEADERS } from '../../federated/http/headers.ts';
import { ROUTES } from '../contract/index.ts';
import type { Route } from '../contract/route.ts';
import { services } from '../services.ts';

/** The admin routes, from their declarations (`security: 'adminToken'`): method and a pattern of the path. */
const ADMIN_ROUTES = (Object.values(ROUTES) as Route[])
  .filter((r) => r.security === 'adminToken')
  .map((r) => ({ method: r.method.toUpperCase(), path: new RegExp(`^${r.path.replace(/\{\w+\}/g, '[^/]+')}/?$`) }));

/** The admin API: every route declared with the admin token, and anything else under /v1/models (none of it is public). */
export function isAdminRoute(method: string, path: string): boolean {
  if (path === '/v1/models' || path.startsWith('/v1/models/')) return true;
  return ADMIN_ROUTES.some((r) => r.method === method && r.path.test(path));
}

/** The origin a cross-origin browser may read the answer from, or null: admin routes only by name. */
function allowedOrigin(origin: string, c: Context<{ Bindings: Env }>): string | null {
  const { corsOrigins } = services(c.env).config;
  // A preflight names the method it asks for; the request itself carries it.
  const method =
    c.req.method === 'OPTIONS' ? (c.req.header('Access-Control-Request-Method') ?? '').toUpperCase() : c.req.method;
  if (isAdminRoute(method, new URL(c.req.url).pathname))
    return corsOrigins !== '*' && origin !== 'null' && corsOrigins.includes(origin) ? origin : null;
  return corsOrigins === '*' ? origin || '*' : corsOrigins.includes(origin) ? origin : null;
}

const browserCors = cors({
  origin: allowedOrigin,
  allowMethods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
  allowHeaders: [...REQUEST_HEADERS],
  exposeHeaders: [...RESPONSE_HEADERS],
  maxAge: 600,
});

/**
 * Hono's cors for requests that carry an Origin (every cross-origin browser request and preflight does, Fetch
 * standard §3.1 "Origin header"); a request without one (a server, a same-origin GET) has no CORS to answer and
 * skips it: hono/cors writes its headers onto a placeholder Response that the route's answer is then copied over,
 * two extra Response objects on the inference hot path (bench:profile). `Vary: Origin` either way, for caches.
 */
export function corsPolicy(): MiddlewareHandler<{ Bindings: Env }> {
  return async function corsPolicy(c, next) {
    if (c.req.method === 'OPTIONS' || c.req.header('Origin') !== undefined) return browserCors(c, next);
    c.header('Vary', 'Origin');
    await next();
  };
}
