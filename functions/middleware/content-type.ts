/** The request's media type (lower case, parameters dropped) and the 415 for a body sent as the wrong type. */
import type { Context } from 'hono';
import { fail } from './errors.ts';

export function mediaType(c: Context): string {
  return (c.req.header('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
}

export function requireContentType(c: Context, expected: string, what = 'the body'): void {
  const type = mediaType(c);
  if (type !== expected) fail(415, `send ${what} as ${expected}${type ? `, not ${type}` : ''}`);
}
