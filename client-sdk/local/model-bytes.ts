/**
 * A model version's bytes on the device: from the cache when they are there (keyed by sha256, so a hit needs no
 * network), else downloaded from the edge, checked against the sha256 the edge announced, and cached.
 */
import type { EdgeClient } from '../edge/edge-client.ts';
import { sha256Hex } from '../../federated/model/digest.ts';
import type { ModelCache } from './model-cache.ts';
import { LocalModelError } from './local-model-error.ts';

export interface VersionRef {
  client: EdgeClient;
  model: string;
  version: string;
  sha256: string;
  cache?: ModelCache | undefined;
  signal?: AbortSignal | undefined;
}

/** The cached bytes, or undefined. */
export function cachedBytes(ref: Pick<VersionRef, 'cache' | 'sha256'>): Promise<Uint8Array | undefined> {
  return ref.cache?.get(ref.sha256) ?? Promise.resolve(undefined);
}

/** Downloads the version's bytes, checks their sha256 and caches them. */
export async function downloadBytes(ref: VersionRef): Promise<Uint8Array> {
  const got = await ref.client.modelBytes(ref.model, ref.version, { signal: ref.signal });
  const actual = await sha256Hex(got.bytes);
  if (actual !== ref.sha256)
    throw new LocalModelError(
      `downloaded bytes of ${ref.model}@${ref.version} have sha256 ${actual}, the edge announced ${ref.sha256}`,
    );
  await ref.cache?.put(ref.sha256, got.bytes);
  return got.bytes;
}

/** From the cache, else downloaded. */
export async function modelBytes(ref: VersionRef): Promise<{ bytes: Uint8Array; fromCache: boolean }> {
  const cached = await cachedBytes(ref);
  return cached ? { bytes: cached, fromCache: true } : { bytes: await downloadBytes(ref), fromCache: false };
}
