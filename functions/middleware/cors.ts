/**
 * CORS for web apps calling the edge from their own origins (allowed origins: FEDGE_CORS_ORIGINS).
 * The binary tensor extension's header must be both sendable and readable by page scripts.
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { services } from '../services.ts';

export const EXPOSED_HEADERS = ['Inference-Header-Content-Length', 'X-Request-Id', 'Retry-After', 'Fedge-Execution-Provider', 'Fedge-Model-Sha256', 'Fedge-Model-Version', 'ETag'];

export function corsPolicy(): MiddlewareHandler<{ Bindings: Env }> {
  return async function corsPolicy(c, next) {
    const { corsOrigins } = services(c.env).config;
    return cors({
      origin: (origin) => (corsOrigins === '*' ? origin || '*' : corsOrigins.includes(origin) ? origin : null),
      allowMethods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
      allowHeaders: ['Content-Type', 'Authorization', 'Inference-Header-Content-Length', 'X-Request-Id', 'If-None-Match'],
      exposeHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    })(c, next);
  };
}
