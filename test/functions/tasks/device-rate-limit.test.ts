/** Per-device token buckets: a burst of `capacity`, then `refillPerSecond`; keys are independent; Retry-After is honest. */
import { describe, expect, it } from 'vitest';
import { DeviceRateLimit } from '../../../functions/tasks/round/device-rate-limit.ts';

describe('DeviceRateLimit', () => {
  it('allows a burst, then refills at its rate, per key', () => {
    const limit = new DeviceRateLimit({ capacity: 3, refillPerSecond: 0.5 });
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) expect(limit.take('a', t0).ok).toBe(true);
    expect(limit.take('a', t0)).toEqual({ ok: false, retryAfterSeconds: 2 }); // one token every 2 s
    expect(limit.take('b', t0).ok).toBe(true); // another device is not affected
    expect(limit.take('a', t0 + 1000).ok).toBe(false); // half a token
    expect(limit.take('a', t0 + 2000).ok).toBe(true);
    expect(limit.take('a', t0 + 2000).ok).toBe(false);
    for (let i = 0; i < 3; i++) expect(limit.take('a', t0 + 60_000).ok).toBe(true); // refilled to capacity, not beyond
    expect(limit.take('a', t0 + 60_000).ok).toBe(false);
  });
});
