/**
 * POST /v1/tasks on a served language model: `base: {model, version}` with `trainable: "lora:<rank>"` (and
 * `lora: {alpha}`) or `"last:<blocks>"`. The base must be a decoder Fedge exported — its weights are read now as every
 * round will read them (readDecoderWeights), so a third-party decoder or a classifier is a 422 with the reason, as is
 * a rank or block count the decoder cannot take; an unknown model or version is a 404. The task's global weights
 * start as the base: B = 0 for LoRA, the base's own last blocks for last:<n>.
 */
import type { z } from 'zod';
import type { taskBody } from '../contract/schemas/task-bodies.ts';
import { fail } from '../middleware/errors.ts';
import { services } from '../services.ts';
import { getBlob } from '../registry/blob-store.ts';
import type { TaskAdapter } from '../../federated/aggregation/task-protocol.ts';
import { lastBlockWeights, taskAdapter } from '../../federated/aggregation/task-adapter.ts';
import type { DecoderSpec } from '../../federated/model/decoder-spec.ts';
import { DecoderWeightsError, readDecoderWeights } from '../../federated/model/decoder-weights.ts';
import { ModelSpecError } from '../../federated/model/model-spec.ts';
import type { Req } from './task-access.ts';

export async function adapterModel(
  c: Req,
  body: z.infer<typeof taskBody>,
): Promise<{ spec: DecoderSpec; weights: Float32Array; adapter: TaskAdapter }> {
  const { model, version } = body.base!;
  const record = await services(c.env).registry.resolve(model, version);
  const where = `base ${model}@${record.version}`;
  try {
    const { spec, weights } = readDecoderWeights(await getBlob(c.env.MODEL_BLOBS, record.sha256));
    const adapter = await taskAdapter({
      task: body.task,
      spec,
      model,
      version: record.version,
      sha256: record.sha256,
      trainable: body.trainable!,
      alpha: body.lora?.alpha,
    });
    if (adapter.lora) return { spec, weights: new Float32Array(adapter.length), adapter };
    // last:<n>: the base's own values of the weights that train, flat in the spec's order.
    const byName = new Map(weights.map((w) => [w.name, w.values]));
    const start = new Float32Array(adapter.length);
    let offset = 0;
    for (const { name } of lastBlockWeights(spec, Number(adapter.trainable.slice('last:'.length)))) {
      start.set(byName.get(name)!, offset);
      offset += byName.get(name)!.length;
    }
    return { spec, weights: start, adapter };
  } catch (e) {
    if (e instanceof DecoderWeightsError)
      fail(422, `${where}: ${e.message}; trainable "${body.trainable}" fine-tunes a language model Fedge exported`);
    if (e instanceof ModelSpecError) fail(422, `${where}: ${e.message}`);
    if (e instanceof RangeError) fail(400, e.message);
    throw e;
  }
}
