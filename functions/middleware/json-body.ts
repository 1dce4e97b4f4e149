/**
 * JSON request bodies, read one way for every route: `application/json` (else 415), UTF-8, nested at most
 * `maxDepth` arrays/objects deep, then the route's zod schema; the first problem is a 400 that quotes little of the
 * input. `jsonBody(schema)` does all of it as middleware and hands the handler the typed value as `c.var.body`;
 * `parseJson` and `describeIssue` serve bodies that are not only JSON (the binary inference extension's header).
 * The body's size is bounded before (limitBody, readBody), so nothing here reads without a limit.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { clip } from '../inference/quote.ts';
import { requireContentType } from './content-type.ts';
import { JsonBodyError } from './json-body-error.ts';

/**
 * Deepest nesting of arrays and objects a request body may have. JSON.parse itself copes with any depth, but
 * 4 M nested arrays cost seconds and hundreds of MB, and every recursive walk over the result (a stringify,
 * a schema) would overflow the stack. Tensors nest as deep as their rank; deeper ones can be sent flat.
 */
export const MAX_JSON_DEPTH = 64;

/** Refuses text nested deeper than `max` before parsing it: one pass over the characters, strings skipped. */
function checkDepth(text: string, max: number): void {
  // Nesting needs as many opening brackets: text with at most `max` of them (counted by native indexOf, strings
  // included, so the bound only errs on the safe side) skips the character walk — a tensor body has a handful.
  let opening = 0;
  for (const bracket of ['[', '{'])
    for (let i = text.indexOf(bracket); i >= 0 && opening <= max; i = text.indexOf(bracket, i + 1)) opening++;
  if (opening <= max) return;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string literal (a backslash escapes the next character).
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) throw new JsonBodyError(`request JSON is nested deeper than ${max} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

// One decoder for every request: decode() without { stream } keeps no state between calls.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** UTF-8 JSON, at most `maxDepth` arrays/objects deep; anything else is a JsonBodyError that quotes little of the input. */
export function parseJson(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new JsonBodyError('request JSON is not valid UTF-8');
  }
  checkDepth(text, maxDepth);
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8 quotes a few characters of the input; clip anyway, the message is the engine's to change.
    throw new JsonBodyError(`request body is not valid JSON: ${clip(String((e as Error)?.message ?? e), 200)}`);
  }
}

/**
 * First problem, as "inputs[0].shape[1]: dimensions must not be negative". Path keys can be the caller's
 * (a parameters record), so the path and the message are clipped.
 */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = issue.path.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${clip(String(p))}` : clip(String(p))),
    '',
  );
  return `${clip(path, 200) || 'request'}: ${clip(issue.message, 200)}`;
}

/** A handler's context after jsonBody(schema): `c.var.body` is the schema's value. */
export type WithBody<S extends z.ZodType> = Context<{ Bindings: Env; Variables: { body: z.output<S> } }>;

/** `bytes` as the schema's value, or a JsonBodyError saying what is wrong. */
export function parseBody<S extends z.ZodType>(bytes: Uint8Array, schema: S, maxDepth = MAX_JSON_DEPTH): z.output<S> {
  const parsed = schema.safeParse(parseJson(bytes, maxDepth));
  if (!parsed.success) throw new JsonBodyError(describeIssue(parsed.error));
  return parsed.data;
}

export interface JsonBodyOptions {
  /** Deepest nesting (default MAX_JSON_DEPTH). */
  maxDepth?: number;
  /** An empty body is the schema's value for `{}` (a route whose every field has a default), with no Content-Type. */
  optional?: boolean;
}

/**
 * The request's JSON body as the schema's value. For a handler that must check other things first (a task that
 * exists, a token); otherwise use the jsonBody middleware.
 */
export async function readJson<S extends z.ZodType>(
  c: Context,
  schema: S,
  o: JsonBodyOptions = {},
): Promise<z.output<S>> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (o.optional && bytes.byteLength === 0) return parseBody(new TextEncoder().encode('{}'), schema);
  requireContentType(c, 'application/json');
  return parseBody(bytes, schema, o.maxDepth);
}

/** The route's JSON body, checked against `schema`, as `c.var.body` (typed: WithBody<typeof schema>). */
export function jsonBody<S extends z.ZodType>(
  schema: S,
  o: JsonBodyOptions = {},
): MiddlewareHandler<{ Variables: { body: z.output<S> } }> {
  return async function jsonBody(c, next) {
    c.set('body', await readJson(c, schema, o));
    await next();
  };
}
