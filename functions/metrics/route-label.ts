/**
 * The `route` label of fedge_http_requests_total: the Hono route pattern that answers (`/v2/models/:name/infer`),
 * never the raw path, so the number of series stays bounded by the app's route list whatever URLs clients send.
 * Middleware (method ALL, e.g. `/*`) is not a route; a request no route matches is labelled `unmatched`.
 */
export const UNMATCHED = 'unmatched';

export function routeLabel(matched: readonly { method: string; path: string }[]): string {
  // Hono runs matched handlers in registration order and the first route handler answers.
  return matched.find((r) => r.method !== 'ALL')?.path ?? UNMATCHED;
}
