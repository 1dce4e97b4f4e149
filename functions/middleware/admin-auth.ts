/**
 * Admin routes need `Authorization: Bearer <FEDGE_ADMIN_TOKEN>`: 401 when missing, 403 when wrong.
 * Compared in constant time over SHA-256 digests (equal length whatever the caller sends).
 */
import type { MiddlewareHandler } from 'hono';
import { fail } from './errors.ts';

async function digest(s: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest('SHA-256', new TextEncoder().encode(s));
}

export function adminAuth(): MiddlewareHandler<{ Bindings: Env }> {
  return async function adminAuth(c, next) {
    const expected = c.env.FEDGE_ADMIN_TOKEN;
    if (!expected) fail(403, 'admin API is disabled: the Worker secret FEDGE_ADMIN_TOKEN is not set');
    const header = c.req.header('Authorization');
    const match = header?.match(/^Bearer\s+(.+)$/i);
    if (!match) fail(401, 'admin token required: send Authorization: Bearer <token>', { 'WWW-Authenticate': 'Bearer realm="fedge-admin"' });
    const [a, b] = await Promise.all([digest(match[1]!.trim()), digest(expected)]);
    if (!crypto.subtle.timingSafeEqual(a, b)) fail(403, 'admin token is not valid');
    await next();
  };
}
