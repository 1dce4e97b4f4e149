/**
 * The one way a model version enters the catalog — an admin's upload, a bundled model's registration at first
 * use, a federated task's round. Order of writes keeps storage whole: the bytes are loaded (and, for an upload,
 * run once on inputs built from their metadata) before anything is written; the blob goes to R2 by sha256
 * (content-addressed, so a retry or a race rewrites nothing); then the catalog records the version in one
 * transaction; only then may an alias move to it. A refused model writes nothing.
 */
import { sha256Hex } from '../../federated/model/digest.ts';
import { loadModel } from '../inference/model-loader.ts';
import { probeModel } from '../inference/probe.ts';
import { putBlob } from './blob-store.ts';
import type { ModelCatalog, PutVersionResult } from './model-catalog.ts';

export interface Publication {
  model: string;
  version: string;
  bytes: Uint8Array;
  /** Move this alias to the version once it is recorded (not when the version exists with other bytes). */
  alias?: string | undefined;
  /** Run the model once before storing it (uploads: a model that loads but cannot run is refused). */
  probe?: { maxElements: number } | undefined;
}

/**
 * Publishes `p` through `catalog`. `unchanged`: the version exists with these bytes (nothing written);
 * `conflict`: it exists with other bytes (nothing written — versions are immutable). Throws what loading or
 * probing throws (ModelLoadError, ModelRunError) before any write.
 */
export async function publishModel(env: Env, catalog: DurableObjectStub<ModelCatalog>, p: Publication): Promise<PutVersionResult> {
  const sha256 = await sha256Hex(p.bytes);
  const existing = await catalog.resolve(p.model, p.version);
  let result: PutVersionResult;
  if (existing && existing.version === p.version) {
    result = existing.sha256 === sha256 ? { status: 'unchanged', record: existing } : { status: 'conflict', record: existing };
  } else {
    const loaded = await loadModel(p.bytes);
    try {
      if (p.probe) await probeModel(loaded, p.probe);
    } finally {
      await loaded.session.release();
    }
    await putBlob(env.MODEL_BLOBS, sha256, p.bytes);
    result = await catalog.putVersion({ model: p.model, version: p.version, sha256, bytes: p.bytes.byteLength, inputs: loaded.inputs, outputs: loaded.outputs });
  }
  // Also after `unchanged`: a publish retried after the version was written still moves the alias.
  if (result.status !== 'conflict' && p.alias) await catalog.setAlias(p.model, p.alias, p.version);
  return result;
}
