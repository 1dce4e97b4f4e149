/**
 * Admin routes need `Authorization: Bearer <FEDGE_ADMIN_TOKEN>`: 401 when missing, 403 when wrong (compared in
 * constant time, client-key.ts). Wrong guesses are limited hard per address: each one spends a token of the
 * ADMIN_AUTH_LIMITER binding (wrangler.toml: 10 a minute), and an address over it is refused (429) *before* its
 * token is looked at, for the rest of the minute — otherwise a guesser could still tell a right token by the
 * 200 among the 429s. The block is remembered per isolate, so across isolates a guesser gains at most one extra
 * try per isolate and minute; the limiter itself is shared by the location.
 */
import type { MiddlewareHandler } from 'hono';
import { fail } from './errors.ts';
import { bearerToken, clientAddress, isAdminToken } from './client-key.ts';

/** How long an address over the failed-auth limit is refused. */
export const BLOCK_MS = 60_000;
const MAX_BLOCKED = 10_000;
/** Addresses over the failed-auth limit, until when (this isolate). */
const blocked = new Map<string, number>();

function blockedFor(address: string, now: number): number {
  const until = blocked.get(address);
  if (until === undefined) return 0;
  if (until <= now) {
    blocked.delete(address);
    return 0;
  }
  return Math.ceil((until - now) / 1000);
}

function tooMany(seconds: number): never {
  fail(429, `too many failed admin logins from this address; retry after ${seconds} s`, {
    'Retry-After': String(seconds),
  });
}

export function adminAuth(): MiddlewareHandler<{ Bindings: Env }> {
  return async function adminAuth(c, next) {
    const expected = c.env.FEDGE_ADMIN_TOKEN;
    if (!expected) fail(403, 'admin API is disabled: the Worker secret FEDGE_ADMIN_TOKEN is not set');
    const address = clientAddress(c);
    const wait = blockedFor(address, Date.now());
    if (wait) tooMany(wait);
    const token = bearerToken(c);
    if (!token)
      fail(401, 'admin token required: send Authorization: Bearer <token>', {
        'WWW-Authenticate': 'Bearer realm="fedge-admin"',
      });
    if (!(await isAdminToken(token, expected))) {
      const limiter = c.env.ADMIN_AUTH_LIMITER;
      if (limiter && !(await limiter.limit({ key: `admin-auth:${address}` })).success) {
        if (blocked.size >= MAX_BLOCKED) blocked.delete(blocked.keys().next().value!);
        blocked.set(address, Date.now() + BLOCK_MS);
        tooMany(BLOCK_MS / 1000);
      }
      fail(403, 'admin token is not valid');
    }
    await next();
  };
}
