/**
 * A finished round's mean update from its unmasked sum(s) — what the task's server optimizer steps with. A sum no
 * honest devices could have sent (sum-bounds.ts), or one that decodes to nothing usable, throws SecAggAbort: the
 * round is abandoned and nothing of it published. Pure (no storage): the task's object calls it when a round ends.
 */
import { combineShards } from '../../federated/aggregation/shard-combination.ts';
import { type TaskSettings, taskUpdateCodec } from '../../federated/aggregation/task-protocol.ts';
import { UpdateDecodeError } from '../../federated/aggregation/update-codec.ts';
import { fromBase64 } from '../../federated/bytes.ts';
import { SecAggAbort } from '../../federated/secagg/messages.ts';
import type { RoundPointer } from './task-store.ts';

/** An unsharded round's mean: the survivors' sum, held to its bounds, then decoded (update-codec.ts). */
export async function meanUpdate(
  s: TaskSettings,
  p: RoundPointer,
  sum: Uint32Array,
  survivors: number,
): Promise<Float32Array> {
  const codec = taskUpdateCodec(s, fromBase64(p.graphSeed));
  const problem = codec.check(sum, survivors);
  if (problem) throw new SecAggAbort(`the round's sum is not one its ${survivors} devices could have sent: ${problem}`);
  try {
    return await codec.decode(sum, survivors);
  } catch (e) {
    if (e instanceof UpdateDecodeError) throw new SecAggAbort(e.message);
    throw e;
  }
}

/**
 * A sharded round's mean: each published shard's sum decoded (each was held to its bounds when it arrived) and the
 * shards combined robustly (shard-combination.ts) — one shard's mean counts for at most twice the median's norm.
 */
export async function combinedMean(
  s: TaskSettings,
  p: RoundPointer,
  parts: { sum: Uint32Array; survivors: number }[],
): Promise<Float32Array> {
  const codec = taskUpdateCodec(s, fromBase64(p.graphSeed));
  const totals = await Promise.all(parts.map((x) => codec.total(x.sum, x.survivors)));
  if (!totals.some((t) => t.weight > 0)) throw new SecAggAbort('the survivors trained on no examples');
  const { mean } = combineShards(totals);
  if (!mean.every(Number.isFinite)) throw new SecAggAbort('the unmasked mean update is not finite');
  return mean;
}
