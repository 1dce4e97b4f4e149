/**
 * Model bytes kept on the device, keyed by their sha256 — a version's bytes never change, so a hit needs no
 * network at all. The Cache API where the page has it (browsers, secure contexts), memory otherwise. Bytes are
 * checked against their digest on the way in and out: a corrupt entry is dropped and counts as a miss.
 */
import { sha256Hex } from '../../federated/model/digest.ts';

export interface ModelCache {
  get(sha256: string): Promise<Uint8Array | undefined>;
  put(sha256: string, bytes: Uint8Array): Promise<void>;
}

/** Keys are synthetic URLs: the Cache API only stores http(s) requests; nothing is ever fetched from them. */
const key = (sha256: string) => `https://fedge-model-cache.invalid/sha256/${sha256}`;

export class CacheApiModelCache implements ModelCache {
  readonly #name: string;
  constructor(name = 'fedge-models') {
    this.#name = name;
  }
  async get(sha256: string): Promise<Uint8Array | undefined> {
    const cache = await caches.open(this.#name);
    const hit = await cache.match(key(sha256));
    if (!hit) return undefined;
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if ((await sha256Hex(bytes)) === sha256) return bytes;
    await cache.delete(key(sha256));
    return undefined;
  }
  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    const cache = await caches.open(this.#name);
    await cache.put(
      key(sha256),
      new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'Content-Type': 'application/octet-stream' } }),
    );
  }
}

export class MemoryModelCache implements ModelCache {
  readonly #entries = new Map<string, Uint8Array>();
  async get(sha256: string): Promise<Uint8Array | undefined> {
    return this.#entries.get(sha256);
  }
  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    this.#entries.set(sha256, bytes);
  }
}

let processCache: MemoryModelCache | undefined;

/**
 * The Cache API when this context has it, else one memory cache shared by the whole process (Node, workers without
 * caches): with a fresh cache per load, `mode: 'auto'` would never find the bytes it prefetched and never run locally.
 */
export function defaultModelCache(): ModelCache {
  if (typeof caches !== 'undefined' && typeof caches.open === 'function') return new CacheApiModelCache();
  return (processCache ??= new MemoryModelCache());
}
