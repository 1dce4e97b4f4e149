/**
 * One declaration per route: method, path, parameters, body (schema and size limit), answers and the refusals it
 * gives. Everything else is derived from it — the Hono registration (routes/register.ts: path, admin guard, body limit,
 * JSON body), the OpenAPI document (openapi/document.ts), the SDK's types (client-sdk/edge/contract.ts) and the check
 * of docs/http-api.md's route tables. Pure data: no Hono, no Worker bindings, so the SDK's type generator and the docs
 * tests read it in Node.
 *
 * Refusals the middleware implied by a declaration gives are not listed by the route: the rate limit (every route),
 * the admin guard (`security: 'adminToken'`), a JSON body (400/415) and a body limit (408/413/429); see ./errors.ts.
 */
import type { z } from 'zod';
import type { Config } from '../config.ts';

export type Method = 'get' | 'post' | 'put' | 'delete';
export type Tag =
  | 'Inference (OIP v2)'
  | 'Text generation'
  | 'Models (admin)'
  | 'Federated tasks'
  | 'Monitoring'
  | 'Documents';
export type Security = 'adminToken' | 'enrollmentToken' | 'deviceSignature';
/** Status → when the route answers it. */
export type Errors = Record<number, string>;

/** A parameter as OpenAPI states it (the JSON Schema is for readers; handlers check their own). */
export interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: Record<string, unknown>;
  description: string;
}

/** How large a body may be: a constant, one of the Worker's variables, or a limit only the handler knows. */
export type Limit =
  | { what: string; bytes: number }
  | { what: string; config: 'maxInferBytes' | 'maxModelBytes' }
  | { what: string; handler: string };

export interface JsonBody<S extends z.ZodType = z.ZodType> {
  type: 'json';
  /** A named schema (schemas/named.ts): its name is the OpenAPI component's and the SDK type's. */
  schema: S;
  limit: Limit;
  /** Deepest nesting (default MAX_JSON_DEPTH). */
  maxDepth?: number;
  /** An empty body reads as `{}`. */
  optional?: boolean;
  /** The handler reads the body itself, after checks that must come first (a task that exists, a token). */
  readBy?: 'handler';
}

export interface BytesBody {
  type: 'bytes';
  description: string;
  limit: Limit;
  /** The same route also takes a JSON body of this schema (inference: JSON, or binary tensor data). */
  json?: z.ZodType;
}

/** One answer: JSON of a named schema, bytes, text, or nothing; `headers` name components.headers entries. */
export interface Reply {
  description: string;
  /** A named schema (schemas/named.ts). */
  json?: z.ZodType;
  bytes?: string;
  text?: string;
  /** Server-sent events (text/event-stream): what each `data:` line holds. */
  events?: string;
  /** Any JSON object, documented elsewhere (the OpenAPI document itself). */
  object?: true;
  /** Response header → its components.headers entry (openapi/components.ts). */
  headers?: Record<string, string>;
}

export interface Route {
  method: Method;
  /** OpenAPI path template (`/v1/tasks/{task}`); Hono's pattern is derived (`:task`). */
  path: string;
  tag: Tag;
  summary: string;
  description?: string;
  security?: Security;
  /** Overrides of the shared path parameters (params.ts), by name. */
  pathParams?: Record<string, Partial<Param>>;
  /** Query and header parameters. */
  params?: Param[];
  body?: JsonBody | BytesBody;
  responses: Record<number, Reply>;
  /** Refusals of the route itself (those of its middleware are added: ./errors.ts). */
  errors?: Errors;
}

/** Routes by operationId: the key is the id, so it is written once. */
export const defineRoutes = <const R extends Record<string, Route>>(routes: R): R => routes;

/** `/v1/tasks/{task}` → `/v1/tasks/:task`. */
export const honoPath = (path: string): string => path.replace(/\{(\w+)\}/g, ':$1');

/** The names of a path template's parameters, in order. */
export const pathParamNames = (path: string): string[] => [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);

/** The byte limit a Limit sets under this configuration; undefined when the handler applies its own. */
export function limitBytes(limit: Limit, config: Config): number | undefined {
  if ('bytes' in limit) return limit.bytes;
  if ('config' in limit) return config[limit.config];
  return undefined;
}

/** The JSON body a route's handler finds in `c.var.body` (read by middleware), else never. */
export type BodyOf<R extends Route> =
  R['body'] extends JsonBody<infer S> ? (R['body'] extends { readBy: 'handler' } ? never : z.output<S>) : never;
