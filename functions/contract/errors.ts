/**
 * The refusals a route's middleware gives, derived from its declaration (route.ts), and the sets several routes
 * share. Limits in the prose are the constants the code enforces, never copies of them.
 */
import { DEFAULTS } from '../config.ts';
import { BLOCK_MS } from '../middleware/admin-auth.ts';
import { MAX_JSON_DEPTH } from '../middleware/json-body.ts';
import { INFLIGHT_BODY_BYTES } from '../middleware/read-body.ts';
import type { Errors, Limit, Route } from './route.ts';

export const MiB = (n: number) => `${n / 1024 / 1024} MiB`;
export const KiB = (n: number) => `${n / 1024} KiB`;

/** The Worker variable each configurable limit is read from (functions/config.ts). */
const LIMIT_VARIABLES = { maxInferBytes: 'FEDGE_MAX_INFER_BYTES', maxModelBytes: 'FEDGE_MAX_MODEL_BYTES' } as const;

/** A body limit in words: "4 KiB", "FEDGE_MAX_MODEL_BYTES (default 64 MiB)", or what the handler bounds it by. */
export function limitText(limit: Limit): string {
  if ('bytes' in limit) return limit.bytes >= 1024 * 1024 ? MiB(limit.bytes) : KiB(limit.bytes);
  if ('config' in limit) return `${LIMIT_VARIABLES[limit.config]} (default ${MiB(DEFAULTS[limit.config])})`;
  return limit.handler;
}

/** Statuses merged: the descriptions of one status are joined. */
export function merge(...sets: (Errors | undefined)[]): Errors {
  const out: Errors = {};
  for (const set of sets)
    for (const [status, when] of Object.entries(set ?? {}))
      out[+status] = out[+status] ? `${out[+status]}; ${when}` : when;
  return out;
}

/** Every route is behind the per-client rate limit (middleware/rate-limit.ts), before anything else. */
export const RATE: Errors = {
  429: "over the per-client rate limit (the RATE_LIMITER binding's requests a minute per connecting address, or for the admin; FEDGE_RATE_LIMIT=off turns it off); Retry-After",
};

export const ADMIN: Errors = {
  401: 'no admin token (Authorization: Bearer …); WWW-Authenticate: Bearer',
  403: 'the admin token is wrong, or the admin API is disabled (FEDGE_ADMIN_TOKEN not set)',
  429: `more wrong admin tokens a minute from this address than the ADMIN_AUTH_LIMITER binding allows: the address is refused for ${BLOCK_MS / 1000} s before its token is compared, the right one included; Retry-After`,
};

export const bodyErrors = (limit: Limit): Errors => ({
  408: `the body did not arrive whole within FEDGE_BODY_TIMEOUT_MS (default ${DEFAULTS.bodyTimeoutMs / 1000} s)`,
  413: `the body is larger than ${limitText(limit)} (counted as it arrives, whatever Content-Length says)`,
  429: `the isolate is busy reading other bodies (${MiB(INFLIGHT_BODY_BYTES)} in flight) and this one could not start within the timeout; Retry-After: 1`,
});

export const jsonBodyErrors = (depth = MAX_JSON_DEPTH): Errors => ({
  400: `the body is not UTF-8 JSON, is nested deeper than ${depth} levels, or does not match the schema (the message names the first problem's path)`,
  415: 'Content-Type is not application/json',
});

export const NO_TASK: Errors = { 404: 'no such task (no Durable Object is created for it)' };

export const deviceLimit = (what: string): Errors => ({
  429: `this device is over its ${what} (a burst, then a steady rate; per device, counted only after its signature verified); Retry-After`,
});

/** Every refusal of a route: the rate limit, its body's, its guard's, then its own. */
export function routeErrors(route: Route): Errors {
  const body = route.body;
  return merge(
    RATE,
    body?.type === 'json' ? jsonBodyErrors(body.maxDepth) : undefined,
    route.errors,
    body ? bodyErrors(body.limit) : undefined,
    route.security === 'adminToken' ? ADMIN : undefined,
  );
}
