/**
 * Per-isolate memo of catalog resolutions ("model" or "model@ref" → version record) for a bounded time.
 * Every inference would otherwise make a Durable Object round trip to the one ModelCatalog — locally that
 * halves throughput, deployed it is a trip to wherever that object lives. Writes made through this isolate
 * clear it at once; writes made elsewhere (another isolate, a FederatedTask publishing) are seen within
 * `ttlMs`. `ttlMs = 0` turns the cache off (every request asks the catalog).
 */
import type { VersionRecord } from './model-record.ts';

const MAX_ENTRIES = 1024;

export class ResolutionCache {
  readonly #entries = new Map<string, { record: VersionRecord; expires: number }>();

  readonly ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.ttlMs = ttlMs;
    this.#now = now;
  }

  get(model: string, ref: string | undefined): VersionRecord | undefined {
    const key = keyOf(model, ref);
    const hit = this.#entries.get(key);
    if (!hit) return undefined;
    if (hit.expires <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return hit.record;
  }

  set(model: string, ref: string | undefined, record: VersionRecord): void {
    if (this.ttlMs <= 0) return;
    const key = keyOf(model, ref);
    this.#entries.delete(key);
    // Map keeps insertion order: the first key is the oldest entry.
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { record, expires: this.#now() + this.ttlMs });
  }

  clear(): void {
    this.#entries.clear();
  }
}

function keyOf(model: string, ref: string | undefined): string {
  return ref === undefined ? model : `${model}\u0000${ref}`;
}
