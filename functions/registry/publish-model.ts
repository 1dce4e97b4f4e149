/**
 * The one way a model version enters the catalog — an admin's upload, a bundled model's registration at first
 * use, a federated task's round. Order of writes keeps storage whole: the bytes are loaded (and, for an upload,
 * run once: inference/probe.ts, whose verdict is stored with the version) before anything is written; the blob goes
 * to R2 by sha256 (content-addressed, so a retry or a race rewrites nothing); then the catalog records the version
 * in one transaction; only then may an alias move to it. A refused model writes nothing.
 *
 * The bytes stored are canonical (federated/model/onnx-canonical.ts): decoded strictly and re-encoded, so that
 * onnxruntime, which serves them, and Fedge's codec, which trains and publishes from them, read one model. A file that
 * some reader could take two ways (a field outside ONNX's schema, a known field with another wire type, a singular
 * field twice, two members of a oneof, an enum value outside its enum, a string that is not UTF-8, onnxruntime's
 * ORT-format identifier) is refused (400) before anything is loaded. Files written by ONNX's C++ or Python (so
 * PyTorch's, onnx.save's, Fedge's own) are canonical already: stored as they came, with their own sha256.
 */
import { sha256Hex } from '../../federated/model/digest.ts';
import { canonicalModel } from '../../federated/model/onnx-canonical.ts';
import { OnnxFormatError } from '../../federated/model/onnx-format-error.ts';
import { refuseModel } from '../inference/errors.ts';
import { loadModel } from '../inference/model-loader.ts';
import { type ProbeLimits, type WarmupInput, probeModel } from '../inference/probe.ts';
import { putBlob } from './blob-store.ts';
import type { LatestPolicy, ModelCatalog, PutVersionResult } from './model-catalog.ts';
import type { LanguageModel } from '../../federated/generation/language-model.ts';
import type { TextGeneration } from '../../federated/oip/model-records.ts';

export interface Publication {
  model: string;
  version: string;
  bytes: Uint8Array;
  /** Move this alias to the version once it is recorded (not when the version exists with other bytes). */
  alias?: string | undefined;
  /** Whether the version moves `latest` (model-catalog.ts putVersion; default always). */
  latest?: LatestPolicy | undefined;
  /**
   * Run the model once before storing it (uploads) and record the verdict; on `warmup` when given (a failure is
   * refused), else on generated inputs (a failure is recorded, not refused). With a warm-up, an upload of bytes this
   * version already has runs too, and its passing verdict replaces the stored one.
   */
  probe?: (ProbeLimits & { warmup?: WarmupInput[] | undefined }) | undefined;
}

/**
 * Publishes `p` through `catalog`, its bytes made canonical first (the module comment): the sha256 compared and
 * stored is the canonical bytes'. `unchanged`: the version exists with these bytes (nothing written but a
 * warm-up's verdict);
 * `conflict`: it exists with other bytes (nothing written — versions are immutable). Throws what loading or
 * probing throws (ModelLoadError, TensorError for a warm-up that does not fit) before any write; bytes that are
 * not canonical ONNX a ModelLoadError too.
 */
export async function publishModel(
  env: Env,
  catalog: DurableObjectStub<ModelCatalog>,
  publication: Publication,
): Promise<PutVersionResult> {
  const p = { ...publication, bytes: canonical(publication.bytes) };
  const sha256 = await sha256Hex(p.bytes);
  const existing = await catalog.resolve(p.model, p.version);
  let result: PutVersionResult;
  if (existing && existing.version === p.version) {
    if (existing.sha256 !== sha256) result = { status: 'conflict', record: existing };
    else if (p.probe?.warmup) {
      const { verdict } = await loadAndProbe(p.bytes, p.probe);
      result = { status: 'unchanged', record: (await catalog.setProbe(p.model, p.version, verdict!)) ?? existing };
    } else result = { status: 'unchanged', record: existing };
  } else {
    const { loaded, verdict } = await loadAndProbe(p.bytes, p.probe);
    await putBlob(env.MODEL_BLOBS, sha256, p.bytes);
    result = await catalog.putVersion(
      {
        model: p.model,
        version: p.version,
        sha256,
        bytes: p.bytes.byteLength,
        inputs: loaded.inputs,
        outputs: loaded.outputs,
        ...(verdict && { probe: verdict }),
        ...(loaded.language && { textGeneration: textGeneration(loaded.language) }),
      },
      p.latest,
    );
  }
  // Also after `unchanged`: a publish retried after the version was written still moves the alias.
  if (result.status !== 'conflict' && p.alias) await catalog.setAlias(p.model, p.alias, p.version);
  return result;
}

/** The bytes to store for `bytes` (onnx-canonical.ts); empty ones are left to loadModel, which says the body is empty. */
function canonical(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength === 0) return bytes;
  try {
    return canonicalModel(bytes);
  } catch (e) {
    if (e instanceof OnnxFormatError) refuseModel(e.message);
    throw e;
  }
}

function textGeneration({ tokenizer, config, layout }: LanguageModel): TextGeneration {
  return {
    vocabSize: tokenizer.vocabSize,
    ...(config.contextLength !== undefined && { contextLength: config.contextLength }),
    layers: layout.layers,
  };
}

/** Loads the bytes (throws what loading throws) and, when asked, runs them once; the session is released either way. */
async function loadAndProbe(bytes: Uint8Array, probe: Publication['probe']) {
  const loaded = await loadModel(bytes);
  try {
    return { loaded, verdict: probe ? await probeModel(loaded, probe, probe.warmup) : undefined };
  } finally {
    await loaded.session.release();
  }
}
