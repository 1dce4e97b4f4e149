/**
 * One error shape for every route: `{ "error": "<message>" }` with the fitting status (API.md "Errors").
 * Handlers throw HTTPException through `fail`; code below them throws typed errors (DOMAIN_ERRORS); `onError` renders
 * both and logs with the request id.
 * Anything else is a bug: logged in full, answered with a 500 that names the request id.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ModelLoadError, TensorError } from '../inference/errors.ts';
import { MemoryBusyError, MemoryExceededError } from '../inference/memory.ts';
import { ModelRunError } from '../inference/run-error.ts';
import { UnknownModelError } from '../registry/errors.ts';
import { HeadError } from '../../federated/model/head/head-error.ts';
import { OnnxFormatError } from '../../federated/model/onnx-format-error.ts';
import { JsonBodyError } from './json-body-error.ts';
import { GenerationParamsError, LanguageModelError } from '../../federated/generation/errors.ts';

/**
 * The typed errors code below the routes throws, and the status each answers. A model that fails at run time is the
 * caller's 400 as Triton answers it: the server cannot tell a bad input from a bad model (routes/inference.ts). Out of
 * ORT's memory after the other sessions were released is not the caller's fault: 503 while other models hold it, 507
 * when the load or run alone needs more than the heap bound (inference/memory.ts). A stored model whose graph Fedge
 * cannot take apart (HeadError: no trainable head, bytes it does not read as onnxruntime does) or cannot read at all
 * (OnnxFormatError) is 422: the request names a model it cannot be done on (task creation maps HeadError itself, with
 * the model's name; these are the fallback, so such a fault is never a 500).
 */
const DOMAIN_ERRORS: [new (...args: never[]) => Error, ContentfulStatusCode, (e: Error) => string][] = [
  [TensorError, 400, (e) => e.message],
  [JsonBodyError, 400, (e) => e.message],
  [ModelLoadError, 400, (e) => e.message],
  [ModelRunError, 400, (e) => `the model failed on this input: ${e.message}`],
  [MemoryBusyError, 503, (e) => e.message],
  [MemoryExceededError, 507, (e) => e.message],
  [UnknownModelError, 404, (e) => e.message],
  [GenerationParamsError, 400, (e) => e.message],
  [LanguageModelError, 400, (e) => `this model cannot generate text: ${e.message}`],
  [HeadError, 422, (e) => e.message],
  [OnnxFormatError, 422, (e) => e.message],
];

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

/** The status and message a typed error from below the routes answers with; undefined for anything else (a bug). */
export function domainError(err: Error): { status: ContentfulStatusCode; message: string } | undefined {
  for (const [type, status, message] of DOMAIN_ERRORS)
    if (err instanceof type) return { status, message: message(err) };
  return undefined;
}

export function onError(err: Error, c: Context): Response {
  const requestId = c.get('requestId' as never) as string | undefined;
  if (err instanceof HTTPException) {
    if (err.status >= 500) console.error(`[${requestId}] ${err.status} ${err.message}`);
    // HTTPExceptions thrown by hono's own middleware (e.g. body-limit) carry a plain-text response: re-render it as JSON.
    const message = err.message || (err.status === 413 ? 'request body is too large' : 'request refused');
    return errorJson(c, err.status as ContentfulStatusCode, message, err.res?.headers);
  }
  const domain = domainError(err);
  if (domain) return errorJson(c, domain.status, domain.message);
  console.error(`[${requestId}] unhandled error:`, err.stack ?? err);
  return errorJson(c, 500, `internal error (request id ${requestId ?? 'unknown'})`);
}

export function notFound(c: Context): Response {
  return errorJson(c, 404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
}
