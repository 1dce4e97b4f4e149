/**
 * A sharded round as the task's coordinator sees it (Bonawitz et al., "Towards Federated Learning at Scale", SysML
 * 2019, §4 — Aggregators under a Master Aggregator): devices check in at the coordinator; when check-in closes it
 * draws a fresh seed and assigns them to shards (secagg/shards.ts); each shard runs share-keys → unmask as its own
 * SecAgg+ instance in an aggregator object and reports its unmasked sum (or why it was abandoned); the coordinator
 * keeps the published shards' sums apart and combines them robustly (shard-combination.ts). A shard that fails costs
 * its devices the round, not the round. Pure: no I/O (the FederatedTask stores this and talks to the aggregators).
 */
import { MAX_STAGE_FACTOR } from './round-controller.ts';
import type { ShardSummary } from './task-protocol.ts';

/** What a shard's aggregator tells the coordinator when its round ends. */
export type ShardReport =
  | {
      status: 'published';
      devices: number;
      shared: number;
      submitted: number;
      survivors: number;
      unmasked: number;
      badShares: { holder: string; of: string }[];
      epsilon: [string, number][];
    }
  | { status: 'abandoned'; devices: number; reason: string };

export interface ShardedRound {
  roundId: string;
  /** The assignment seed (base64), drawn when check-in closed: nobody could grind ids into a shard before. */
  seed: string;
  /** Devices of each shard, in check-in order. */
  members: string[][];
  /** Devices whose shard was full: they sit this round out. */
  overflow: string[];
  /** Each shard's report, null while it runs. */
  reports: (ShardReport | null)[];
}

/**
 * How long the coordinator waits for its shards: each runs three stages of at most MAX_STAGE_FACTOR × stageSeconds
 * (round-controller.ts) and may retry its report a few times; a shard that has not reported by then is abandoned.
 */
export function shardedDeadline(opened: number, stageSeconds: number): number {
  return opened + (3 * MAX_STAGE_FACTOR + 4) * stageSeconds * 1000 + 10_000;
}

/** Name of shard `index`'s aggregator object: unique per round, so a late message can never meet another round. */
export const aggregatorName = (roundId: string, index: number) => `${roundId}/shard-${index}`;

/**
 * The round's outcome from its shards' reports. A shard that has not reported is abandoned with that reason (the
 * round is over), or, with `unreported: 'running'`, still running (the status of a round in progress).
 */
export function mergeReports(r: ShardedRound, o: { unreported?: 'abandoned' | 'running' } = {}) {
  const reports = r.reports.map(
    (x, j): ShardReport | null =>
      x ??
      (o.unreported === 'running'
        ? null
        : { status: 'abandoned', devices: r.members[j]!.length, reason: "no report before the round's deadline" }),
  );
  const published = reports.filter((x) => x?.status === 'published') as (ShardReport & { status: 'published' })[];
  const total = (f: 'shared' | 'submitted' | 'survivors' | 'unmasked') => published.reduce((n, x) => n + x[f], 0);
  const shards: ShardSummary[] = reports.map((x, j) =>
    x === null
      ? { devices: r.members[j]!.length, survivors: 0, status: 'running' }
      : x.status === 'published'
        ? { devices: x.devices, survivors: x.survivors, status: x.status }
        : { devices: x.devices, survivors: 0, status: x.status, reason: x.reason },
  );
  return {
    shards,
    shared: total('shared'),
    submitted: total('submitted'),
    survivors: total('survivors'),
    unmasked: total('unmasked'),
    badShares: published.flatMap((x) => x.badShares),
    /** Why the round publishes nothing, when no shard published. */
    failure: published.length
      ? undefined
      : `every shard was abandoned: ${[...new Set(reports.map((x) => (x?.status === 'abandoned' ? x.reason : '')))].join('; ')}`,
  };
}
