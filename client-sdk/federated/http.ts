/**
 * The SDK's HTTP: JSON errors from the edge become EdgeError (status + the server's message); network failures,
 * 429 and 503 are retried with exponential backoff and full jitter, honouring Retry-After.
 */
export class EdgeError extends Error {
  override name = 'EdgeError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface HttpOptions {
  fetch?: typeof fetch;
  retries?: number;
  signal?: AbortSignal;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

export async function request(url: string, init: RequestInit, opts: HttpOptions = {}): Promise<Response> {
  const f = opts.fetch ?? fetch;
  const retries = opts.retries ?? 5;
  for (let attempt = 0; ; attempt++) {
    let res: Response | undefined;
    let failure: unknown;
    try {
      res = await f(url, { ...init, signal: opts.signal });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      failure = e;
    }
    const retryable = !res || res.status === 429 || res.status === 503;
    if (res && !retryable) {
      if (res.ok || res.status === 304) return res;
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      throw new EdgeError(res.status, body.error ?? `${res.status} ${res.statusText}`);
    }
    if (attempt >= retries) {
      if (res) throw new EdgeError(res.status, ((await res.json().catch(() => ({}))) as { error?: string }).error ?? `${res.status} after ${retries} retries`);
      throw failure;
    }
    const after = Number(res?.headers.get('Retry-After'));
    const backoff = Number.isFinite(after) && after > 0 ? after * 1000 : Math.random() * Math.min(8000, 100 * 2 ** attempt);
    await sleep(backoff, opts.signal);
  }
}
