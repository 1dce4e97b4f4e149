/** Closed-loop HTTP load: `connections` clients each send the next request when the last one answered. */
import { Agent, request } from 'undici';

export interface LoadResult {
  connections: number;
  requests: number;
  p50: number;
  p95: number;
  rps: number;
}

/** `body` undefined sends GET. */
export async function runLoad(
  url: string,
  body: string | undefined,
  opts: { connections: number; requests: number; warmup?: number },
): Promise<LoadResult> {
  const agent = new Agent({ connections: opts.connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const send = async () => {
    const res =
      body === undefined
        ? await request(url, { dispatcher: agent })
        : await request(url, {
            method: 'POST',
            body,
            headers: { 'content-type': 'application/json' },
            dispatcher: agent,
          });
    await res.body.arrayBuffer();
    if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
  };
  for (let i = 0; i < (opts.warmup ?? 100); i++) await send();
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (next++ < opts.requests) {
        const t = performance.now();
        await send();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await agent.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return {
    connections: opts.connections,
    requests: latencies.length,
    p50: q(0.5),
    p95: q(0.95),
    rps: latencies.length / elapsed,
  };
}
