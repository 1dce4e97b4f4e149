/**
 * The SDK's HTTP: JSON errors from the edge become EdgeError (status + the server's message); network failures,
 * timeouts, 429 and 503 are retried with exponential backoff and full jitter (Brooker, "Exponential Backoff And
 * Jitter", AWS Architecture Blog 2015), honouring Retry-After. The caller's AbortSignal stops everything at once.
 * Idempotent requests may ask for more (`retryStatuses` with 5xx, `retryForMs`): a device waiting out a server
 * restart keeps trying for a time budget rather than a count of attempts (EdgeClient keeps the default count).
 */
export class EdgeError extends Error {
  override name = 'EdgeError';
  /** HTTP status, or 0 when no answer came (network failure, timeout). */
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

export interface HttpOptions {
  fetch?: typeof fetch | undefined;
  retries?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Per attempt, ms (default: none). */
  timeoutMs?: number | undefined;
  /** Statuses worth another attempt (default 429, 503). Add 5xx only for requests that are safe to repeat. */
  retryStatuses?: readonly number[] | undefined;
  /**
   * Keep retrying (network failures and `retryStatuses`) until this many ms after the first attempt, however many
   * attempts that takes; `retries` is then no limit. For idempotent requests that should outlast a server restart.
   */
  retryForMs?: number | undefined;
}

const RETRY_STATUSES = [429, 503];

/**
 * A fetch that rejected without any answer. A browser gives a script no reason (Fetch standard §4.1: a CORS failure
 * is a network error, deliberately indistinguishable), so the message names the URL and both likely causes.
 */
function noResponse(url: string, e: unknown): EdgeError {
  const message = (e as Error)?.message ?? String(e);
  return new EdgeError(
    0,
    `no response from ${url} (${message}): the request may have been blocked — by CORS (the edge's FEDGE_CORS_ORIGINS must list this page's origin) or by the network — or the edge is down`,
    { cause: e },
  );
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export async function request(url: string, init: RequestInit, opts: HttpOptions = {}): Promise<Response> {
  const f = opts.fetch ?? fetch;
  const retries = opts.retries ?? 5;
  const giveUpAt = opts.retryForMs === undefined ? undefined : Date.now() + opts.retryForMs;
  for (let attempt = 0; ; attempt++) {
    let res: Response | undefined;
    let failure: unknown;
    const timeout = opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined;
    const signal = timeout && opts.signal ? AbortSignal.any([opts.signal, timeout]) : (timeout ?? opts.signal);
    try {
      res = await f(url, { ...init, signal: signal ?? null });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      failure = timeout?.aborted
        ? new EdgeError(0, `no answer from ${url} within ${opts.timeoutMs} ms`, { cause: e })
        : noResponse(url, e);
    }
    const retryable = !res || (opts.retryStatuses ?? RETRY_STATUSES).includes(res.status);
    if (res && !retryable) {
      if (res.ok || res.status === 304) return res;
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      throw new EdgeError(res.status, body.error ?? `${res.status} ${res.statusText}`);
    }
    const after = retryAfterMs(res?.headers.get('Retry-After'));
    const delay = after ?? Math.random() * Math.min(8000, 100 * 2 ** attempt);
    if (giveUpAt === undefined ? attempt >= retries : Date.now() + delay > giveUpAt) {
      if (res)
        throw new EdgeError(
          res.status,
          ((await res.json().catch(() => ({}))) as { error?: string }).error ??
            `${res.status} after ${attempt} retries`,
        );
      throw failure;
    }
    await res?.body?.cancel().catch(() => undefined);
    await sleep(delay, opts.signal);
  }
}
