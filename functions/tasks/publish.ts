/**
 * Publishing a round's model: ONNX from the spec and the new weights → int8 (fp32 when the model is too small to
 * gain) → published like every version (registry/publish-model.ts) as `r<round>`, the task's alias moved to it;
 * `latest` too, but only on a model the task created (a served model's `latest` moves by an explicit alias move).
 * A task on a served model's head writes the new head into the base graph instead (writeHead: every other byte the base's, int8 head
 * weights quantized again from the fp32 average when the base was int8); a task on a served language model writes its merged
 * adapters (or its last blocks) into the base decoder (publish-adapter.ts). I/O only; the FederatedTask commits the
 * round after this succeeds, and retries a failure a bounded number of times.
 */
import { exportOnnx } from '../../federated/model/onnx-export.ts';
import { unflattenWeights } from '../../federated/model/flat-weights.ts';
import { QuantizeError, quantizeModel } from '../../federated/model/quantize.ts';
import { type TaskSettings, isDecoderTask } from '../../federated/aggregation/task-protocol.ts';
import { getBlob } from '../registry/blob-store.ts';
import { publishModel } from '../registry/publish-model.ts';
import { writeHead } from '../../federated/model/head/write.ts';
import { adapterModel } from './publish-adapter.ts';

function specModel(s: TaskSettings, round: number, weights: Float32Array): Uint8Array {
  if (isDecoderTask(s.spec)) throw new Error(`task ${s.task}: a decoder task publishes through its adapters`);
  const fp32 = exportOnnx(s.spec, unflattenWeights(s.spec, weights), {
    metadata: { task: s.task, round: String(round) },
  });
  try {
    return quantizeModel(fp32).bytes;
  } catch (e) {
    if (!(e instanceof QuantizeError)) throw e; // a model too small to gain from int8 is published in fp32
    return fp32;
  }
}

/** The model of `round` with `weights` is the catalog's version `r<round>` and the task's alias points at it. */
export async function publishRound(env: Env, s: TaskSettings, round: number, weights: Float32Array): Promise<string> {
  const version = `r${round}`;
  const onnx = s.adapter
    ? await adapterModel(env, s, weights)
    : s.base
      ? writeHead(await getBlob(env.MODEL_BLOBS, s.base.sha256), s.base.head, weights)
      : specModel(s, round, weights);
  const result = await publishModel(env, env.MODEL_CATALOG.getByName('global'), {
    model: s.model,
    version,
    bytes: onnx,
    // A gated round is stored, not served: its evaluation moves the aliases (federated-task.ts evaluation).
    alias: s.gate ? undefined : s.alias,
    // The task's own earlier rounds: `latest` follows them on a model the task created, and never moves on a model
    // that was served before it (issue 31: one device's round reached every default inference of a served model).
    latest: s.gate ? 'never' : { onlyFrom: Array.from({ length: round - 1 }, (_, i) => `r${i + 1}`) },
  });
  if (result.status === 'conflict')
    throw new Error(`model '${s.model}' version '${version}' already exists with other bytes: the task cannot publish`);
  return version;
}

/**
 * A gated round that passed its evaluation is served: the task's alias and the gate's `promote` alias (e.g. `latest`)
 * move to its version. Throws when an alias could not move (the round stays pending, to be evaluated again).
 */
export async function serveRound(env: Env, s: TaskSettings, version: string): Promise<void> {
  const catalog = env.MODEL_CATALOG.getByName('global');
  for (const alias of [s.alias, ...(s.gate?.promote ? [s.gate.promote] : [])]) {
    const moved = await catalog.setAlias(s.model, alias, version);
    if (moved.status !== 'ok') throw new Error(`task ${s.task}: alias ${alias} could not move to ${version}`);
  }
}
