/**
 * Guards every route shares: per-client rate limits that random tokens cannot bypass, a hard limit on failed admin
 * logins per address, CORS that never opens the admin API to arbitrary origins, and request bodies bounded in size
 * and time. Each caller here gets its own address (CF-Connecting-IP), so the limits of one test touch no other.
 */
import { SELF, env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import app from '../../../functions/app.ts';
import { REQUEST_HEADERS, RESPONSE_HEADERS } from '../../../federated/http/headers.ts';

let n = 0;
/** A fresh client address (TEST-NET-3 range: only a header here, nothing is sent anywhere). */
const address = () => `203.0.113.${++n}-${Date.now().toString(36)}`;

describe('rate limits', () => {
  it('random bearer tokens do not buy a fresh per-client limit: they count against the address', async () => {
    const ip = address();
    let limited = 0;
    // The limiter counts in fixed one-minute windows: 2,500 requests (a few seconds) span at most two windows, so one
    // of them sees more than its 1,200 — unless each random token had a limit of its own.
    for (let i = 1; i <= 2500 && !limited; i++) {
      const res = await SELF.fetch('http://edge/v2/health/live', {
        headers: { 'CF-Connecting-IP': ip, Authorization: `Bearer random-${i}-${Math.random()}` },
      });
      if (res.status === 429) limited = i;
      else await res.arrayBuffer();
    }
    expect(limited).toBeGreaterThan(0);
    // Another address is not affected.
    expect(
      (await SELF.fetch('http://edge/v2/health/live', { headers: { 'CF-Connecting-IP': address() } })).status,
    ).toBe(200);
  });

  it('failed admin logins are limited hard per address: past 10 a minute, even the right token is refused there for a minute', async () => {
    const ip = address();
    const attempt = (token: string) =>
      SELF.fetch('http://edge/v1/models/guard/aliases/x', {
        method: 'PUT',
        headers: { 'CF-Connecting-IP': ip, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: '{"version":"1"}',
      });
    // Fixed one-minute windows: a boundary between two guesses can give 10 more, so the block comes by guess 21.
    const statuses: number[] = [];
    for (let i = 0; i < 22 && !statuses.includes(429); i++) statuses.push((await attempt(`guess-${i}`)).status);
    const first = statuses.indexOf(429);
    expect(first).toBeGreaterThanOrEqual(10);
    expect(statuses.slice(0, first)).toEqual(Array(first).fill(403));
    expect((await attempt('guess-again')).status).toBe(429);
    const right = await attempt('test-admin-token');
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(((await right.json()) as { error: string }).error).toMatch(/failed admin logins/);
    // The admin elsewhere is not locked out.
    const elsewhere = await SELF.fetch('http://edge/v1/models/guard/aliases/x', {
      method: 'PUT',
      headers: {
        'CF-Connecting-IP': address(),
        Authorization: 'Bearer test-admin-token',
        'Content-Type': 'application/json',
      },
      body: '{"version":"1"}',
    });
    expect(elsewhere.status).toBe(404); // authenticated; the model does not exist
  });
});

describe('CORS', () => {
  const preflight = (path: string, origin: string, method = 'PUT', e: object = env) =>
    app.request(
      path,
      {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': method,
          'Access-Control-Request-Headers': 'authorization,content-type',
        },
      },
      e,
    );

  it('with FEDGE_CORS_ORIGINS = *, inference answers any origin but admin routes answer none (null included)', async () => {
    expect(
      (await preflight('/v2/models/x/infer', 'https://app.example', 'POST')).headers.get('Access-Control-Allow-Origin'),
    ).toBe('https://app.example');
    for (const origin of ['https://evil.example', 'null']) {
      for (const [path, method] of [
        ['/v1/models/x/versions/1', 'PUT'],
        ['/v1/models/x/aliases/a', 'PUT'],
        ['/v1/models/x/versions/1', 'DELETE'],
        ['/v1/tasks', 'POST'],
        ['/v1/tasks/t/close-stage', 'POST'],
        ['/v1/tasks/t/evaluations', 'POST'],
        ['/v1/tasks/t/pause', 'POST'],
        ['/v1/tasks/t/resume', 'POST'],
        ['/v1/tasks/t/finish', 'POST'],
        ['/v1/tasks/t', 'DELETE'],
      ] as const) {
        const res = await preflight(path, origin, method);
        expect({ path, method, origin, allow: res.headers.get('Access-Control-Allow-Origin') }).toEqual({
          path,
          method,
          origin,
          allow: null,
        });
      }
      const get = await SELF.fetch('http://edge/v1/models/x/versions/1', {
        method: 'DELETE',
        headers: { Origin: origin, Authorization: 'Bearer test-admin-token' },
      });
      expect(get.headers.get('Access-Control-Allow-Origin')).toBeNull();
    }
    // Device routes stay open to web apps.
    expect(
      (await preflight('/v1/tasks/t/messages', 'https://app.example', 'POST')).headers.get(
        'Access-Control-Allow-Origin',
      ),
    ).toBe('https://app.example');
  });

  it('a request with an Origin gets the CORS headers; one without gets none, and both say Vary: Origin', async () => {
    const browser = await SELF.fetch('http://edge/v2/health/live', {
      headers: { Origin: 'https://app.example', 'CF-Connecting-IP': address() },
    });
    expect(browser.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    expect(browser.headers.get('Access-Control-Expose-Headers')).toContain('Inference-Header-Content-Length');
    expect(browser.headers.get('Vary')).toBe('Origin');
    const server = await SELF.fetch('http://edge/v2/health/live', { headers: { 'CF-Connecting-IP': address() } });
    expect(server.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(server.headers.get('Vary')).toBe('Origin');
    expect(server.headers.get('X-Request-Id')).toBeTruthy();
  });

  it('a page on another origin may send and read every header the SDK sends or reads (one list)', async () => {
    const res = await app.request(
      '/v1/tasks/t/rounds/1/broadcast',
      {
        method: 'OPTIONS',
        headers: {
          Origin: 'https://app.example',
          'Access-Control-Request-Method': 'GET',
          'Access-Control-Request-Headers': 'fedge-device-signature',
        },
      },
      env,
    );
    const allowed = (res.headers.get('Access-Control-Allow-Headers') ?? '').toLowerCase().split(/,\s*/);
    for (const h of REQUEST_HEADERS) expect(allowed, h).toContain(h.toLowerCase());
    const answer = await SELF.fetch('http://edge/v2/health/live', {
      headers: { Origin: 'https://app.example', 'CF-Connecting-IP': address() },
    });
    const exposed = (answer.headers.get('Access-Control-Expose-Headers') ?? '').toLowerCase().split(/,\s*/);
    for (const h of RESPONSE_HEADERS) expect(exposed, h).toContain(h.toLowerCase());
    expect(exposed).toContain('fedge-weights-version');
    expect(allowed).toEqual(expect.arrayContaining(['fedge-device-signature', 'fedge-epsilon-spent']));
  });

  it('admin routes answer an origin listed by name, and only that one', async () => {
    const listed = { ...env, FEDGE_CORS_ORIGINS: 'https://admin.example, https://app.example' };
    expect(
      (await preflight('/v1/models/x/versions/1', 'https://admin.example', 'PUT', listed)).headers.get(
        'Access-Control-Allow-Origin',
      ),
    ).toBe('https://admin.example');
    expect(
      (await preflight('/v1/models/x/versions/1', 'https://evil.example', 'PUT', listed)).headers.get(
        'Access-Control-Allow-Origin',
      ),
    ).toBeNull();
    expect(
      (await preflight('/v1/models/x/versions/1', 'null', 'PUT', { ...env, FEDGE_CORS_ORIGINS: 'null' })).headers.get(
        'Access-Control-Allow-Origin',
      ),
    ).toBeNull();
  });
});

describe('request bodies', () => {
  /** A body stream that sends `chunks` of `size` bytes, `gapMs` apart, with no Content-Length. */
  const trickle = (chunks: number, size: number, gapMs: number) => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent++ >= chunks) return controller.close();
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        controller.enqueue(new Uint8Array(size).fill(0x20));
      },
    });
  };
  const infer = (body: BodyInit, e: object, headers: Record<string, string> = {}) =>
    app.request(
      '/v2/models/mnist-mlp/infer',
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': address(), ...headers },
        body,
        duplex: 'half',
      } as RequestInit,
      e,
    );

  it('a trickled body is cut off at the body deadline (408), and nothing waits behind it', async () => {
    const e = { ...env, FEDGE_BODY_TIMEOUT_MS: '400' };
    const started = Date.now();
    const slow = infer(trickle(100, 1, 100), e);
    const quick = await SELF.fetch('http://edge/v2/health/live');
    expect(quick.status).toBe(200);
    const res = await slow;
    expect(res.status).toBe(408);
    expect(((await res.json()) as { error: string }).error).toMatch(/did not arrive within/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a small body with a Content-Length (read in one call) is held to the same deadline and the same limit', async () => {
    const slow = await infer(
      trickle(100, 1, 100),
      { ...env, FEDGE_BODY_TIMEOUT_MS: '400' },
      { 'Content-Length': '100' },
    );
    expect(slow.status).toBe(408);
    // A Content-Length that understates the body buys nothing: what arrives is counted.
    const lying = await infer(
      trickle(10, 8192, 0),
      { ...env, FEDGE_MAX_INFER_BYTES: '65536' },
      { 'Content-Length': '100' },
    );
    expect(lying.status).toBe(413);
  });

  it('a body larger than the limit is refused (413) however it is sent: Content-Length or chunked', async () => {
    const e = { ...env, FEDGE_MAX_INFER_BYTES: '65536' };
    const declared = await infer(new Uint8Array(70_000).fill(0x20), e);
    expect(declared.status).toBe(413);
    const chunked = await infer(trickle(20, 8192, 0), e);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: string }).error).toMatch(/larger than the 65536 bytes allowed/);
  });
});
