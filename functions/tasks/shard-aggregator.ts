/**
 * ShardAggregator: the Durable Object that runs one shard of one sharded round — a complete SecAgg+ instance
 * (share-keys → masked-input → unmask, its own dropout recovery and deadlines; secagg-round.ts) over the devices the
 * task's coordinator assigned to it, in parallel with the round's other shards (Bonawitz et al., SysML 2019, §4: an
 * Aggregator under the Master Aggregator). Its whole life: `begin` (from the coordinator, shard-coordinator.ts),
 * accept its devices' messages (round-object.ts), report its unmasked sum — or why it was abandoned — to the task,
 * and retire: its storage is deleted SHARD_RETENTION_MS after its round. One object per shard spreads a round's memory
 * and CPU over objects each holding at most shardSize devices.
 */
import type { ShardReport } from '../../federated/aggregation/sharded-round.ts';
import type { TaskSettings } from '../../federated/aggregation/task-protocol.ts';
import type { RelayResult, Refusal } from './task-answers.ts';
import type { RoundPointer } from './task-store.ts';
import { RoundObject } from './round/round-object.ts';

/** A finished shard's aggregator keeps its storage this long (late relays get an answer), then deletes it. */
export const SHARD_RETENTION_MS = 10 * 60_000;

/** What the coordinator hands a shard's aggregator when check-in closes. */
export interface ShardStart {
  settings: TaskSettings;
  round: number;
  roundId: string;
  graphSeed: string;
  weightsVersion: number;
  index: number;
  /** The shard's devices and their enrolled identity keys. */
  devices: [string, Uint8Array][];
  /** Their advertise-keys messages (wire bytes), as the coordinator accepted them. */
  ads: Uint8Array[];
}

export class ShardAggregator extends RoundObject {
  /** This object's shard of its round. */
  #index(): number {
    return this.store.meta<{ index: number }>('shard')!.index;
  }

  /**
   * Takes one shard of a round: its devices, their keys and advertisements, with check-in due at once (everyone it
   * waits for has answered). Idempotent. Synchronous on purpose: the coordinator calls it while holding its own
   * queue, so it must never wait for this object's (a shard's report waits on the coordinator's — no cycle).
   */
  begin(start: ShardStart): { started: boolean } {
    if (this.store.settings()) return { started: false };
    // The shard's own settings: its devices, and its one round.
    const s: TaskSettings = { ...start.settings, devicesPerRound: start.devices.length, rounds: start.round };
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.store.setMeta('settings', s);
      this.store.setMeta('shard', { index: start.index });
      for (const [d, key] of start.devices) this.store.addDevice(d, key);
      this.round.open(
        {
          round: start.round,
          roundId: start.roundId,
          graphSeed: start.graphSeed,
          stage: 'advertise-keys',
          opened: now,
          deadline: now,
          weightsVersion: start.weightsVersion,
        },
        start.devices.map(([d], i) => [d, start.ads[i]!]),
      );
    });
    return { started: true };
  }

  /** The task that started this shard was finished or deleted: its storage goes now. */
  async cancel(): Promise<void> {
    if (this.store.settings()) await this.exclusive(() => this.discard());
  }

  protected messageGate(): Refusal | undefined {
    return undefined;
  }
  protected relayGate(): RelayResult | undefined {
    return undefined;
  }

  /** Runs the shard's round; once unmasked, hands its sum to the coordinator (retried when that fails). */
  protected async stepRound(s: TaskSettings, p: RoundPointer, force: boolean): Promise<string | undefined> {
    const step = await this.round.step(s, p, { force });
    if (step.kind !== 'unmasked') return;
    const report = {
      status: 'published' as const,
      devices: s.devicesPerRound,
      shared: step.sharers,
      submitted: step.submitted,
      survivors: step.survivors,
      unmasked: step.unmasked,
      badShares: step.badShares,
      epsilon: this.store.epsilons(),
    } satisfies ShardReport;
    let published: string | undefined;
    try {
      ({ published } = await this.env.FEDERATED_TASK.getByName(s.task).shardReport(
        p.roundId,
        this.#index(),
        report,
        step.sum,
      ));
    } catch (e) {
      return this.retryLater(s, p, "reporting the shard's sum", e);
    }
    const rec = this.store.record(p.round)!;
    this.ctx.storage.transactionSync(() => {
      this.store.setRecord({
        ...rec,
        status: 'published',
        unmasked: report.unmasked,
        dropouts: rec.advertised - report.survivors,
        endedAt: new Date().toISOString(),
        ...(report.badShares.length ? { badShares: report.badShares } : {}),
      });
      this.#retire(p);
    });
    return published;
  }

  /**
   * Records the shard abandoned and tells the coordinator. Not awaited: the coordinator may be the caller (an
   * abandoned shard must never wait on it); a report that is lost costs the shard nothing more — the coordinator
   * counts it abandoned at its deadline.
   */
  protected abandonRound(s: TaskSettings, p: RoundPointer, reason: string, detail?: string): void {
    this.ctx.storage.transactionSync(() => {
      this.round.recordAbandoned(p, reason, detail ? { detail } : {});
      this.#retire(p);
    });
    const index = this.#index();
    void this.env.FEDERATED_TASK.getByName(s.task)
      .shardReport(p.roundId, index, { status: 'abandoned', devices: s.devicesPerRound, reason })
      .catch((e) =>
        console.error(`task ${s.task} round ${p.round} shard ${index}: the abandonment could not be reported:`, e),
      );
  }

  /** The shard's one round is over: nothing is relayed any more; the storage goes after SHARD_RETENTION_MS. */
  #retire(p: RoundPointer): void {
    this.store.setPointer({ ...p, stage: 'finished' });
    this.round.forget();
    void this.ctx.storage.setAlarm(Date.now() + SHARD_RETENTION_MS);
  }

  override async alarm(): Promise<void> {
    if (this.store.pointer()?.stage === 'finished') return this.exclusive(() => this.discard());
    await super.alarm();
  }
}
