/**
 * Counts every answer by route pattern and status for GET /metrics (functions/metrics). First in the chain, so
 * refusals by the middleware after it (rate limit, CORS, body limits) are counted too; errors arrive here already
 * rendered by onError.
 */
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { httpRequests } from '../metrics/isolate-metrics.ts';
import { routeLabel } from '../metrics/route-label.ts';

export function countRequests(): MiddlewareHandler {
  return async function countRequests(c, next) {
    await next();
    try {
      httpRequests.inc({ method: c.req.method, route: routeLabel(matchedRoutes(c)), status: String(c.res.status) });
    } catch (e) {
      console.warn('counting a request failed:', e); // a metric never fails a request
    }
  };
}
