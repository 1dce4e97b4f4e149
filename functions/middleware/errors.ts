/**
 * One error shape for every route: `{ "error": "<message>" }` with the fitting status (API.md "Errors").
 * Handlers throw HTTPException through `fail`; `onError` renders it and logs with the request id.
 * Anything else is a bug: logged in full, answered with a 500 that names the request id.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export function fail(status: ContentfulStatusCode, message: string, headers?: Record<string, string>): never {
  throw new HTTPException(status, { message, res: headers ? new Response(null, { headers }) : undefined });
}

export function errorJson(c: Context, status: ContentfulStatusCode, message: string, headers?: Headers): Response {
  const res = c.json({ error: message }, status);
  headers?.forEach((v, k) => {
    if (k !== 'content-type' && k !== 'content-length') res.headers.set(k, v);
  });
  return res;
}

export function onError(err: Error, c: Context): Response {
  const requestId = c.get('requestId' as never) as string | undefined;
  if (err instanceof HTTPException) {
    if (err.status >= 500) console.error(`[${requestId}] ${err.status} ${err.message}`);
    // HTTPExceptions thrown by hono's own middleware (e.g. body-limit) carry a plain-text response: re-render it as JSON.
    const message = err.message || (err.status === 413 ? 'request body is too large' : 'request refused');
    return errorJson(c, err.status as ContentfulStatusCode, message, err.res?.headers);
  }
  console.error(`[${requestId}] unhandled error:`, err.stack ?? err);
  return errorJson(c, 500, `internal error (request id ${requestId ?? 'unknown'})`);
}

export function notFound(c: Context): Response {
  return errorJson(c, 404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
}
