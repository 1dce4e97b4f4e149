/**
 * A fresh isolate whose first request is refused before its background model lookup finished: the lookup (which
 * also registers the bundled models, shared by every request of the isolate) must still settle, or every later
 * request that needs the registry waits forever. Its own file: vitest-pool-workers gives each file a fresh isolate.
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';

describe('the first request of an isolate', () => {
  it('a bad first inference does not leave the registry waiting for a lookup that request abandoned', async () => {
    const bad = await SELF.fetch('http://edge/v2/models/mnist-mlp/infer', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: [] }),
    });
    expect(bad.status).toBe(400);
    const next = await Promise.race([
      SELF.fetch('http://edge/v2/models').then((r) => r.status),
      new Promise<string>((r) => setTimeout(() => r('no answer within 10 s'), 10_000)),
    ]);
    expect(next).toBe(200);
  });
});
