/**
 * CORS for web apps calling the edge from their own origins (allowed origins: FEDGE_CORS_ORIGINS).
 * The binary tensor extension's header must be both sendable and readable by page scripts.
 * Admin routes answer a cross-origin browser only when its origin is listed by name: `*` opens inference and device
 * routes to every page, never the admin API, and the opaque origin `null` (sandboxed frames, file:// pages) is never
 * allowed there — a page cannot hand a leaked admin token to the edge from anywhere on the web.
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { services } from '../services.ts';

export const EXPOSED_HEADERS = ['Inference-Header-Content-Length', 'X-Request-Id', 'Retry-After', 'Fedge-Execution-Provider', 'Fedge-Model-Sha256', 'Fedge-Model-Version', 'ETag'];

/**
 * The admin API as routes/models.ts and routes/tasks.ts declare it (adminAuth): everything under /v1/models,
 * creating a task, closing a stage, posting an evaluation.
 */
export function isAdminRoute(method: string, path: string): boolean {
  if (path === '/v1/models' || path.startsWith('/v1/models/')) return true;
  if (method === 'POST' && /^\/v1\/tasks\/?$/.test(path)) return true;
  return method === 'POST' && /^\/v1\/tasks\/[^/]+\/(close-stage|evaluations)\/?$/.test(path);
}

export function corsPolicy(): MiddlewareHandler<{ Bindings: Env }> {
  return async function corsPolicy(c, next) {
    const { corsOrigins } = services(c.env).config;
    // A preflight names the method it asks for; the request itself carries it.
    const method = c.req.method === 'OPTIONS' ? (c.req.header('Access-Control-Request-Method') ?? '').toUpperCase() : c.req.method;
    const admin = isAdminRoute(method, new URL(c.req.url).pathname);
    const allowed = (origin: string) => {
      if (admin) return corsOrigins !== '*' && origin !== 'null' && corsOrigins.includes(origin) ? origin : null;
      return corsOrigins === '*' ? origin || '*' : corsOrigins.includes(origin) ? origin : null;
    };
    return cors({
      origin: allowed,
      allowMethods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
      allowHeaders: ['Content-Type', 'Authorization', 'Inference-Header-Content-Length', 'X-Request-Id', 'If-None-Match'],
      exposeHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    })(c, next);
  };
}
