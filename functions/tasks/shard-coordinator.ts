/**
 * The task's side of a sharded round (the pure part is federated/aggregation/sharded-round.ts; Bonawitz et al.,
 * "Towards Federated Learning at Scale", SysML 2019, §4 — Aggregators under a Master Aggregator): the task's object
 * takes check-in, assigns the devices to shards from a fresh seed, starts one ShardAggregator per shard
 * (shard-aggregator.ts), adds the sums they report and completes the round. This module holds what the coordinator
 * does with storage and with its aggregators; FederatedTask decides when, under its one-mutation-at-a-time queue.
 */
import type { RoundRecord, TaskSettings } from '../../federated/aggregation/task-protocol.ts';
import { taskUpdateCodec, updateLength } from '../../federated/aggregation/task-protocol.ts';
import { roundMinimum } from '../../federated/aggregation/round-controller.ts';
import {
  type ShardReport,
  type ShardedRound,
  aggregatorName,
  mergeReports,
  shardedDeadline,
} from '../../federated/aggregation/sharded-round.ts';
import { SecAggAbort } from '../../federated/secagg/messages.ts';
import { assignShards, shardPlan } from '../../federated/secagg/shards.ts';
import { fromBase64, toBase64, u32, u8 } from '../../federated/bytes.ts';
import { randomBytes } from '../../federated/random.ts';
import { type RelayResult, describe, refuse } from './task-answers.ts';
import type { RoundPointer, TaskStore } from './task-store.ts';

/** A sharded round that is due: the published shards' sums (combined robustly by the task) and the record's fields. */
export interface ShardedOutcome {
  parts: { sum: Uint32Array; survivors: number }[];
  survivors: number;
  outcome: Partial<RoundRecord>;
}

/** Blob of shard `index`'s unmasked sum in the current round. */
const shardSum = (index: number) => `${SHARD_SUM}${index}`;
const SHARD_SUM = 'shard-sum-';

export class ShardCoordinator {
  readonly #store: TaskStore;
  readonly #storage: DurableObjectStorage;
  readonly #env: Env;
  /** Shard of each device in the current sharded round (built once per round from the stored assignment). */
  #index: { roundId: string; of: Map<string, number> } | undefined;

  constructor(store: TaskStore, storage: DurableObjectStorage, env: Env) {
    this.#store = store;
    this.#storage = storage;
    this.#env = env;
  }

  /** Whether the task's rounds are sharded when their check-in closes (more devices per round than shardSize). */
  static shards(s: TaskSettings): boolean {
    return s.shardSize !== undefined && s.devicesPerRound > s.shardSize;
  }

  /** The current round's shard assignment, when the round is sharded. */
  round(p: RoundPointer): ShardedRound | undefined {
    const r = this.#store.meta<ShardedRound>('shards');
    return r?.roundId === p.roundId ? r : undefined;
  }

  #shardOf(r: ShardedRound, device: string): number | undefined {
    if (this.#index?.roundId !== r.roundId)
      this.#index = { roundId: r.roundId, of: new Map(r.members.flatMap((m, j) => m.map((d) => [d, j] as const))) };
    return this.#index.of.get(device);
  }

  #aggregator(roundId: string, index: number) {
    return this.#env.SHARD_AGGREGATOR.getByName(aggregatorName(roundId, index));
  }

  /** The aggregator that takes `device`'s messages in round `roundId`, when that round is sharded and past check-in. */
  shardFor(p: RoundPointer, roundId: string, device: string): { shard?: string } {
    const r = this.round(p);
    if (!r || r.roundId !== roundId || p.stage === 'advertise-keys') return {};
    const index = this.#shardOf(r, device);
    return index === undefined ? {} : { shard: aggregatorName(roundId, index) };
  }

  /** A relay asked of the coordinator past check-in: where the device's shard is, or why it has none. */
  relay(p: RoundPointer, r: ShardedRound, device: string): RelayResult {
    const index = this.#shardOf(r, device);
    const report = index === undefined ? undefined : r.reports[index];
    if (report?.status === 'abandoned')
      return refuse(422, `${device}'s shard in round ${p.round} was abandoned: ${report.reason}`);
    if (index !== undefined) return { shard: aggregatorName(p.roundId, index) };
    return refuse(
      422,
      r.overflow.includes(device)
        ? `${device}'s shard was full in round ${p.round}; check in for the next round`
        : `${device} is not in round ${p.round}`,
    );
  }

  /**
   * Check-in of a sharded round closes: a fresh seed (drawn now, after every device chose its id and checked in)
   * assigns the devices to shards (secagg/shards.ts); each shard's aggregator gets its devices' keys and
   * advertisements and runs the rest of the round. Stored before the aggregators start, so a restart reuses the
   * same assignment (starting an aggregator twice is a no-op); the pointer moves only once they have started, so a
   * device sent to its aggregator finds it running. A shard whose aggregator does not start is abandoned.
   */
  async start(s: TaskSettings, p: RoundPointer): Promise<void> {
    let plan = this.round(p);
    if (!plan) {
      const seed = randomBytes(32);
      // Shards for the devices that did check in (not devicesPerRound): fewer devices, fewer and fuller shards.
      const checkedIn = this.#store.senders(p.round, 'advertise-keys');
      const { shards, overflow } = await assignShards(checkedIn, seed, shardPlan(checkedIn.length, s.shardSize!));
      const minStart = roundMinimum(s);
      const reports = shards.map((m): ShardReport | null =>
        m.length >= minStart
          ? null
          : {
              status: 'abandoned',
              devices: m.length,
              reason: `${m.length} devices landed in this shard; a shard needs ${minStart}`,
            },
      );
      plan = { roundId: p.roundId, seed: toBase64(seed), members: shards, overflow, reports };
      this.#store.setMeta('shards', plan);
    }
    const started = plan;
    const reports = await Promise.all(
      started.members.map(async (members, index) => {
        if (started.reports[index]) return started.reports[index];
        try {
          await this.#aggregator(p.roundId, index).begin({
            settings: s,
            round: p.round,
            roundId: p.roundId,
            graphSeed: p.graphSeed,
            weightsVersion: p.weightsVersion,
            index,
            devices: members.map((d) => [d, this.#store.identityKey(d)!]),
            ads: members.map((d) => this.#store.message(p.round, 'advertise-keys', d)!),
          });
          return null;
        } catch (e) {
          console.error(`task ${s.task} round ${p.round}: shard ${index}'s aggregator did not start:`, e);
          return {
            status: 'abandoned',
            devices: members.length,
            reason: `its aggregator did not start: ${describe(e)}`,
          } satisfies ShardReport;
        }
      }),
    );
    // A shard may have reported (abandoned) while the others started: keep what is stored.
    const current = this.round(p)!;
    const now = Date.now();
    const deadline = shardedDeadline(now, s.stageSeconds);
    this.#storage.transactionSync(() => {
      this.#store.setMeta('shards', { ...current, reports: current.reports.map((r, j) => r ?? reports[j] ?? null) });
      this.#store.setPointer({ ...p, stage: 'share-keys', opened: now, deadline });
    });
    await this.#storage.setAlarm(deadline);
  }

  /**
   * A sharded round is due when every shard has reported, or at its deadline with the shards that did (or when
   * forced). Throws SecAggAbort when no shard published.
   */
  due(p: RoundPointer, r: ShardedRound, force: boolean): ShardedOutcome | undefined {
    const now = Date.now();
    const due = force || now >= p.deadline || r.reports.every((x) => x !== null);
    if (!due || (p.retryAt !== undefined && now < p.retryAt && !force)) return;
    const merged = mergeReports(r);
    if (merged.failure) throw new SecAggAbort(merged.failure);
    const { failure: _f, survivors, ...outcome } = merged;
    const parts = r.reports.flatMap((x, j) =>
      x?.status === 'published'
        ? [{ sum: u32(this.#store.readBlob(shardSum(j))!, 'stored shard sum'), survivors: x.survivors }]
        : [],
    );
    return {
      parts,
      survivors,
      outcome: { ...outcome, badShares: outcome.badShares.length ? outcome.badShares : undefined },
    };
  }

  /** Forgets the shard sums of rounds before (a new round starts). */
  clear(): void {
    this.#store.deleteBlobs(SHARD_SUM);
  }

  /**
   * A shard's outcome, once: its sum is kept for the round's combination and its devices' reported ε their records.
   * A report whose sum does not hold up (#checked) counts as the shard abandoned.
   * Returns whether it was taken (false for another round, an unknown shard or a repeat).
   */
  accept(
    s: TaskSettings,
    p: RoundPointer,
    roundId: string,
    index: number,
    report: ShardReport,
    sum?: Uint32Array,
  ): boolean {
    const r = this.round(p);
    if (
      !r ||
      p.roundId !== roundId ||
      p.stage === 'advertise-keys' ||
      p.stage === 'finished' ||
      !(index >= 0 && index < r.members.length) ||
      r.reports[index]
    )
      return false;
    const length = updateLength(s);
    const stored: ShardReport = report.status === 'abandoned' ? report : this.#checked(s, p, report, sum, length);
    this.#storage.transactionSync(() => {
      if (stored.status === 'published') {
        // Kept apart: the task combines the shards' sums robustly (shard-combination.ts).
        this.#store.writeBlob(shardSum(index), u8(sum!));
        for (const [d, e] of stored.epsilon) if (r.members[index]!.includes(d)) this.#store.reportEpsilon(d, e);
      }
      this.#store.setMeta('shards', { ...r, reports: r.reports.map((x, j) => (j === index ? stored : x)) });
    });
    return true;
  }

  /**
   * A published shard's report as it counts: abandoned when its sum is not the round's length over at least
   * minDevices, or is not one its devices could have sent honestly (sum-bounds.ts) — the shard is dropped, not the round.
   */
  #checked(
    s: TaskSettings,
    p: RoundPointer,
    report: ShardReport & { status: 'published' },
    sum: Uint32Array | undefined,
    length: number,
  ): ShardReport {
    const abandoned = (reason: string): ShardReport => ({ status: 'abandoned', devices: report.devices, reason });
    if (!(sum instanceof Uint32Array && sum.length === length && report.survivors >= s.minDevices))
      return abandoned(`its report is not a sum of ${length} words over at least ${s.minDevices} devices`);
    const problem = taskUpdateCodec(s, fromBase64(p.graphSeed)).check(sum, report.survivors);
    return problem
      ? abandoned(`its sum is not one its ${report.survivors} devices could have sent: ${problem}`)
      : report;
  }

  /** Per-shard outcomes for the record of a sharded round that is abandoned as a whole. */
  summaries(p: RoundPointer): Partial<RoundRecord> {
    const r = this.round(p);
    return r ? { shards: mergeReports(r).shards } : {};
  }

  /**
   * A running sharded round as its status shows it: each shard running or as reported, and the counts of the
   * shards that reported (the coordinator sees nothing of a shard's devices until then).
   */
  progress(p: RoundPointer): Partial<RoundRecord> | undefined {
    const r = this.round(p);
    if (!r || p.stage === 'advertise-keys' || p.stage === 'finished') return;
    const { shards, shared, submitted, unmasked } = mergeReports(r, { unreported: 'running' });
    return { shards, shared, submitted, unmasked };
  }

  /**
   * The task is finished or deleted mid-round: the current round's aggregators delete their storage
   * now. Aggregators of earlier rounds delete theirs SHARD_RETENTION_MS after their round, as always.
   */
  async discardRound(p: RoundPointer): Promise<void> {
    const r = this.round(p);
    if (!r) return;
    await Promise.all(r.members.map((_, j) => this.#aggregator(r.roundId, j).cancel()));
    this.#store.deleteMeta('shards');
  }
}
