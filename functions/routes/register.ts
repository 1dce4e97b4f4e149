/**
 * Hono registration from the contract (functions/contract): each route's method and path, and the middleware its
 * declaration implies — the admin guard (`security: 'adminToken'`), its body limit, and its JSON body parsed into
 * `c.var.body` (unless the handler reads it after checks of its own). Handlers are keyed by operationId, so the
 * compiler holds every declared route to exactly one handler.
 */
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { type BodyOf, type Route, honoPath, limitBytes } from '../contract/route.ts';
import { adminAuth } from '../middleware/admin-auth.ts';
import { limitBody } from '../middleware/body-limit.ts';
import { jsonBody } from '../middleware/json-body.ts';

/** A handler's context: the Worker's bindings and, for a JSON body read by middleware, its value as `c.var.body`. */
export type RouteContext<R extends Route = Route> = [BodyOf<R>] extends [never]
  ? Context<{ Bindings: Env }>
  : Context<{ Bindings: Env; Variables: { body: BodyOf<R> } }>;
export type Handler<R extends Route> = (c: RouteContext<R>) => Response | Promise<Response>;
export type Handlers<Rs extends Record<string, Route>> = { [K in keyof Rs]: Handler<Rs[K]> };

/** What runs before a route's handler, in order: guard, body limit, JSON body. */
export function middlewareOf(route: Route): MiddlewareHandler[] {
  const chain: MiddlewareHandler[] = [];
  if (route.security === 'adminToken') chain.push(adminAuth());
  const body = route.body;
  if (body && !('handler' in body.limit)) {
    const limit = body.limit;
    chain.push(limitBody((config) => limitBytes(limit, config)!, limit.what));
  }
  if (body?.type === 'json' && body.readBy !== 'handler')
    chain.push(jsonBody(body.schema, { maxDepth: body.maxDepth, optional: body.optional }));
  return chain;
}

/** Registers every route of `routes`, in its order, with its handler. */
export function register<Rs extends Record<string, Route>>(
  app: Hono<{ Bindings: Env }>,
  routes: Rs,
  handlers: Handlers<Rs>,
): void {
  for (const [id, route] of Object.entries(routes)) {
    const handler = handlers[id as keyof Rs] as unknown as MiddlewareHandler;
    const chain: [MiddlewareHandler, ...MiddlewareHandler[]] = [...middlewareOf(route), handler] as never;
    app.on(route.method.toUpperCase(), honoPath(route.path), ...chain);
  }
}
