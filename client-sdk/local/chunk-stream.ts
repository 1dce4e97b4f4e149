/**
 * A run that reports chunks through a callback, as an async iterator: yields each chunk as it comes, returns the run's
 * result. Leaving the loop early aborts the run (its signal) and waits for it to end.
 */
export async function* chunkStream<R>(
  start: (onChunk: (text: string) => void, signal: AbortSignal) => Promise<R>,
  outer?: AbortSignal,
): AsyncGenerator<string, R> {
  const abort = new AbortController();
  const stop = () => abort.abort(outer?.reason);
  outer?.addEventListener('abort', stop, { once: true });
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let settled = false;
  const run = start((text) => {
    queue.push(text);
    wake?.();
  }, abort.signal).finally(() => {
    settled = true;
    wake?.();
  });
  run.catch(() => undefined);
  try {
    for (;;) {
      while (queue.length) yield queue.shift()!;
      if (settled) return await run;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    outer?.removeEventListener('abort', stop);
    if (!settled) {
      abort.abort();
      await run.catch(() => undefined);
    }
  }
}
