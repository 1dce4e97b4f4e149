/**
 * Who a request counts against for rate limits: the admin (a valid admin token, checked in constant time) or else
 * the connecting address. A bearer token the edge cannot verify names no one — keying on it would let a caller
 * mint a fresh limit per random token — so such requests count against their address like anonymous ones.
 * Device tokens are checked by their task, which limits devices itself (functions/tasks/round/device-rate-limit.ts).
 */
import type { Context } from 'hono';

export function clientAddress(c: Context): string {
  return c.req.header('CF-Connecting-IP') ?? 'local';
}

const encoder = new TextEncoder();

async function digest(s: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest('SHA-256', encoder.encode(s));
}

/** The bearer token the request sends, if any. */
export function bearerToken(c: Context): string | undefined {
  return c.req
    .header('Authorization')
    ?.match(/^Bearer\s+(.+)$/i)?.[1]
    ?.trim();
}

/** True when `token` is the admin token (SHA-256 digests compared in constant time: equal length whatever is sent). */
export async function isAdminToken(token: string, expected: string | undefined): Promise<boolean> {
  if (!expected) return false;
  const [a, b] = await Promise.all([digest(token), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}
