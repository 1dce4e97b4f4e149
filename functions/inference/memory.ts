/**
 * Running out of ORT's WASM heap (bounded by FEDGE_MAX_WASM_BYTES, ort-runtime.ts). The heap never shrinks, but
 * what a released session held goes back to its free list, so a load or a run that runs out first has every other
 * cached session released (once the runs in flight on them finish) and is tried once more. What still does not fit
 * is told apart by what else holds memory at that moment:
 * - other sessions are still alive (runs on them in flight, another upload's probe): the memory is taken right now,
 *   not too small — MemoryBusyError, 503 (retry shortly; the SDK retries 503 with backoff);
 * - nothing else is alive: this load or run alone needs more than the bound — at upload a 400 naming the bound
 *   (the model can never be served here: model-loader.ts, probe.ts), at inference MemoryExceededError, 507.
 * 507 (Insufficient Storage, RFC 4918 §11.5: the server cannot hold what completing the request needs) rather than
 * 503 because a retry cannot help and clients retry 503; rather than 400 because nothing in the request is wrong by
 * itself — the same input runs in an isolate with a larger bound.
 */
import { liveSessions, type ort, wasmHeap } from './ort-runtime.ts';

/** ORT ran out of the WASM heap even after every other cached session was released and it tried again. */
export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
}

/** Other sessions in use hold the memory this load or run needs: 503, worth a retry shortly. */
export class MemoryBusyError extends OutOfMemoryError {
  override name = 'MemoryBusyError';
}

/** This load or run alone needs more than the heap bound: 507, a retry cannot help. */
export class MemoryExceededError extends OutOfMemoryError {
  override name = 'MemoryExceededError';
}

/** Whether an ORT failure message says it ran out of memory (C++ allocation, the JS side's malloc, or the heap's growth). */
export function isOutOfMemoryMessage(message: string): boolean {
  return /bad_alloc|failed to allocate|out of memory|cannot enlarge memory|Aborted\(OOM\)/i.test(message);
}

/** What holds ORT sessions (the session cache), asked to release them when memory runs out. */
export interface SessionHolder {
  /** Releases every session held except `keep`, each after the runs in flight on it; resolves once all are released. */
  releaseAll(keep?: ort.InferenceSession): Promise<void>;
}

const holders = new Set<WeakRef<SessionHolder>>();

/** Registers `holder` (weakly: a holder that is gone is forgotten) to be asked for its sessions when memory runs out. */
export function holdSessions(holder: SessionHolder): void {
  holders.add(new WeakRef(holder));
}

/** Releases every held session but `keep`, and waits until they are released. */
export async function releaseHeldSessions(keep?: ort.InferenceSession): Promise<void> {
  const releases: Promise<void>[] = [];
  for (const ref of holders) {
    const holder = ref.deref();
    if (holder) releases.push(holder.releaseAll(keep));
    else holders.delete(ref);
  }
  await Promise.all(releases);
}

/** Whether sessions other than `own` (how many sessions the failing load or run holds itself) are alive. */
export function othersAlive(own: 0 | 1): boolean {
  return liveSessions() > own;
}

const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

/** "the 64 MiB WASM heap bound (FEDGE_MAX_WASM_BYTES)" */
export function heapBound(): string {
  return `the ${mib(wasmHeap().max)} MiB WASM heap bound (FEDGE_MAX_WASM_BYTES)`;
}

/**
 * The error for a load or run that ran out of memory a second time, after every other cached session was released.
 * `what`: "loading the model" / "this run"; `own`: sessions the load or run holds itself (0 for a load, 1 for a run).
 */
export function outOfMemory(what: string, own: 0 | 1, reason: string): OutOfMemoryError {
  if (othersAlive(own)) {
    return new MemoryBusyError(
      `out of memory: ${what} needs more of ${heapBound()} than the other models in use leave free right now (${reason}); retry shortly`,
    );
  }
  const remedy =
    own === 0 ? 'serve a smaller model or raise FEDGE_MAX_WASM_BYTES' : 'send fewer rows or raise FEDGE_MAX_WASM_BYTES';
  return new MemoryExceededError(
    `out of memory: ${what} needs more than ${heapBound()} even with no other model loaded (${reason}); ${remedy}`,
  );
}
