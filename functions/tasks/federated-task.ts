/**
 * FederatedTask: the Durable Object (SQLite) of one federated task — its lifecycle (create, pause, resume, finish,
 * delete), enrolment, check-in, the coordination of sharded rounds, and publishing: a server optimizer step on the
 * survivors' mean update and a new quantized model version after every round. The rounds themselves are the engine's
 * (round/secagg-round.ts) and what devices send goes through round/round-object.ts; a round of more devices than
 * shardSize runs past check-in in ShardAggregator objects (shard-coordinator.ts, shard-aggregator.ts). Storage is
 * task-store.ts, what it shows task-views.ts, publishing publish.ts.
 */
import {
  type RoundInfo,
  type RoundRecord,
  type TaskLifecycle,
  type TaskSettings,
  type TaskStage,
  type TaskStatus,
  type TaskSummary,
} from '../../federated/aggregation/task-protocol.ts';
import { TaskSettingsError, validateTaskSettings } from '../../federated/aggregation/task-settings.ts';
import type { ShardReport } from '../../federated/aggregation/sharded-round.ts';
import { toBase64, u8 } from '../../federated/bytes.ts';
import type { DeviceMessage } from '../../federated/secagg/messages.ts';
import { randomBytes } from '../../federated/random.ts';
import { publishRound } from './publish.ts';
import { commitStep, publishedRecord, stepModel } from './server-step.ts';
import { type EvaluationResult, recordEvaluation } from './task-evaluation.ts';
import { combinedMean, meanUpdate } from './round-mean.ts';
import { admissionProblem } from './task-admission.ts';
import type { EnrollmentCredential } from '../../federated/aggregation/enrollment.ts';
import { RoundObject } from './round/round-object.ts';
import { ShardCoordinator } from './shard-coordinator.ts';
import { type RelayResult, type Refusal, refuse } from './task-answers.ts';
import type { RoundPointer } from './task-store.ts';
import { cohortInfo, lifecycleOf, pausedOf, roundInfo, taskStatus, taskSummary } from './task-views.ts';

export class FederatedTask extends RoundObject {
  readonly #shards = new ShardCoordinator(this.store, this.ctx.storage, this.env);
  #weightsCache: { version: number; bytes: Uint8Array } | undefined;

  // ---- lifecycle -----------------------------------------------------------------------------------------------

  /** `tokenDigest`: SHA-256 (hex) of the enrollment token devices must present. */
  async create(
    settings: TaskSettings,
    weights: Float32Array,
    tokenDigest: string,
  ): Promise<{ created: boolean } | Refusal> {
    try {
      // The route checked already; the object holds to it too, since a bad setting would break every round.
      validateTaskSettings(settings);
    } catch (e) {
      if (e instanceof TaskSettingsError) return refuse(e.status, e.message);
      throw e;
    }
    return this.exclusive(async () => {
      const existing = this.store.settings();
      if (existing)
        return JSON.stringify(existing) === JSON.stringify(settings)
          ? { created: false }
          : refuse(409, `task '${settings.task}' already exists with other settings`);
      this.ctx.storage.transactionSync(() => {
        this.store.setMeta('settings', settings);
        this.store.setMeta('enrollment', tokenDigest);
        this.store.writeBlob('weights', u8(weights));
        this.#startRound(settings, 1, 0);
      });
      return { created: true };
    });
  }

  #startRound(s: TaskSettings, round: number, weightsVersion: number): void {
    const now = Date.now();
    this.#shards.clear();
    this.round.open({
      round,
      roundId: `${s.task}/${round}/${toBase64(randomBytes(9))}`,
      graphSeed: toBase64(randomBytes(32)),
      stage: 'advertise-keys',
      opened: now,
      deadline: now + s.stageSeconds * 1000,
      weightsVersion,
      ...(s.cohort && { cohortSeed: toBase64(randomBytes(32)) }),
    });
  }

  /** The round after `p`, or the task's end after its last round. */
  #next(s: TaskSettings, p: RoundPointer): void {
    if (p.round < s.rounds) {
      this.#startRound(s, p.round + 1, p.weightsVersion);
      return;
    }
    this.store.setPointer({ ...p, stage: 'finished' });
    this.round.forget();
    void this.ctx.storage.deleteAlarm();
  }

  protected override halted(): boolean {
    return pausedOf(this.store) !== undefined;
  }

  /** Stops the clock: the round stays where it is (its messages, sum and check-ins kept), nothing closes. */
  #pause(reason: string): void {
    this.store.setMeta('paused', { reason, since: new Date().toISOString() });
    void this.ctx.storage.deleteAlarm();
    // Long polls see the task paused at once rather than at the end of their wait.
    this.wake();
  }

  /** Pauses the task (idempotent). A sharded round's shards run their stages on; the round completes on resume. */
  pause(): Promise<{ status: TaskLifecycle } | Refusal> {
    return this.exclusive(async () => {
      if (!this.store.settings()) return this.noTask();
      const p = this.store.pointer();
      if (p.stage === 'finished') return refuse(409, 'the task has finished; it cannot be paused');
      if (!this.halted()) this.#pause('paused by the operator');
      return { status: lifecycleOf(this.store, p) };
    });
  }

  /** Resumes a paused task (idempotent): the current stage gets a full stageSeconds from now. */
  resume(): Promise<{ status: TaskLifecycle } | Refusal> {
    return this.exclusive(async () => {
      const s = this.store.settings();
      if (!s) return this.noTask();
      const p = this.store.pointer();
      if (p.stage === 'finished') return refuse(409, 'the task has finished; it cannot be resumed');
      if (this.halted()) {
        const now = Date.now();
        this.ctx.storage.transactionSync(() => {
          this.store.deleteMeta('paused');
          this.store.setPointer({ ...p, opened: now, deadline: now + s.stageSeconds * 1000 });
        });
        await this.ctx.storage.setAlarm(now + s.stageSeconds * 1000);
      }
      return { status: lifecycleOf(this.store, this.store.pointer()) };
    });
  }

  /**
   * Ends the task now (idempotent): a round under way is abandoned (nothing of it is released), no round opens
   * again; its published versions stay served. The caller releases the base pin (nothing will publish into it).
   */
  finish(): Promise<{ status: TaskLifecycle; base?: { model: string } } | Refusal> {
    return this.exclusive(async () => {
      const s = this.store.settings();
      if (!s) return this.noTask();
      const p = this.store.pointer();
      if (p.stage !== 'finished') {
        const rec = this.store.record(p.round);
        this.ctx.storage.transactionSync(() => {
          if (rec?.status === 'running')
            this.store.setRecord({
              ...rec,
              status: 'abandoned',
              reason: 'the task was finished by the operator',
              endedAt: new Date().toISOString(),
            });
          this.store.deleteMeta('paused');
          this.store.setPointer({ ...p, stage: 'finished' });
        });
        this.round.forget();
        await this.ctx.storage.deleteAlarm();
        // The current round's aggregators would only wait out their deadlines: they go now.
        await this.#shards.discardRound(p);
      }
      const pinned = s.base ?? s.adapter;
      return { status: 'finished' as const, ...(pinned && { base: { model: pinned.model } }) };
    });
  }

  /** Deletes everything the task stored (finish first). Its published model versions are the registry's. */
  destroy(): Promise<{ deleted: boolean }> {
    return this.exclusive(async () => {
      if (!this.store.settings()) return { deleted: false };
      await this.#shards.discardRound(this.store.pointer());
      this.#weightsCache = undefined;
      await this.discard();
      return { deleted: true };
    });
  }

  // ---- devices ---------------------------------------------------------------------------------------------------

  /**
   * Enrols `device` with `identityKey`: the enrollment token (`tokenDigest`: its SHA-256), then the task's enrolment
   * policy (enrollment.ts) — a credential from the app's issuer, the device cap, the cap per `address` (a salted
   * digest of the client's address). A device enrolled already with the same key is a no-op.
   */
  async enroll(
    tokenDigest: string,
    device: string,
    identityKey: Uint8Array,
    o: { address?: string | undefined; credential?: EnrollmentCredential | undefined } = {},
  ): Promise<{ enrolled: boolean } | Refusal> {
    const s = this.store.settings();
    if (!s) return this.noTask();
    const refused = await admissionProblem(this.store, s, { tokenDigest, device, identityKey, ...o });
    if (refused) return refused;
    if (this.store.identityKey(device)) return { enrolled: false };
    this.ctx.storage.transactionSync(() => {
      this.store.addDevice(device, identityKey);
      if (o.address) this.store.addAddress(device, o.address);
    });
    this.round.enrolled(device, identityKey);
    return { enrolled: true };
  }

  /** Revokes an enrolled device (the operator): its messages are refused from now on, also in the round under way. */
  revoke(device: string): Promise<{ revoked: boolean } | Refusal> {
    return this.exclusive(async () => {
      if (!this.store.settings()) return this.noTask();
      if (!this.store.removeDevice(device)) return refuse(404, `no device '${device}' in this task`);
      // The round's SecAgg+ state is rebuilt from storage without the device (its stored messages are skipped).
      this.round.forget();
      return { revoked: true };
    });
  }

  async roundInfo(): Promise<RoundInfo | Refusal> {
    const s = this.store.settings();
    if (!s) return this.noTask();
    const p = this.store.pointer();
    return roundInfo(this.store, s, p, this.round.checkedIn(p), await cohortInfo(s, p));
  }

  weights(): { version: number; bytes: Uint8Array } | Refusal {
    if (!this.store.settings()) return this.noTask();
    const version = this.store.pointer().weightsVersion;
    // Every device of a round downloads them at its start: read once per version, not once per device.
    if (this.#weightsCache?.version !== version)
      this.#weightsCache = { version, bytes: this.store.readBlob('weights')! };
    return this.#weightsCache;
  }

  protected messageGate(p: RoundPointer, m: DeviceMessage): Refusal | undefined {
    const paused = pausedOf(this.store);
    if (paused) return refuse(409, `the task is paused (${paused.reason}); send again once it resumes`);
    // Past check-in, a sharded round's messages go to the sender's aggregator (the client asks shardFor first).
    if (this.#shards.round(p) && p.stage !== 'advertise-keys')
      return refuse(
        422,
        m.stage === 'advertise-keys'
          ? `check-in for round ${p.round} has closed; check in for the next round`
          : `${m.from} is not in a shard of round ${p.round}`,
      );
  }

  protected relayGate(p: RoundPointer, device: string): RelayResult | undefined {
    const sharded = this.#shards.round(p);
    if (sharded && p.stage !== 'advertise-keys') return this.#shards.relay(p, sharded, device);
  }

  // ---- rounds ----------------------------------------------------------------------------------------------------

  protected async stepRound(s: TaskSettings, p: RoundPointer, force: boolean): Promise<string | undefined> {
    const sharded = this.#shards.round(p);
    if (sharded && p.stage !== 'advertise-keys') {
      const due = this.#shards.due(p, sharded, force);
      return due && this.#completeRound(s, p, await combinedMean(s, p, due.parts), due.survivors, due.outcome);
    }
    const step = await this.round.step(s, p, { force, handOff: ShardCoordinator.shards(s) });
    switch (step.kind) {
      case 'waiting':
        return;
      case 'expired':
        this.#pause(step.reason);
        return;
      case 'checked-in':
        await this.#shards.start(s, p);
        // The coordinator holds no SecAgg+ state past check-in: the aggregators do.
        this.round.forget();
        return this.stepRound(s, this.store.pointer(), false);
      case 'unmasked':
        return this.#completeRound(s, p, await meanUpdate(s, p, step.sum, step.survivors), step.survivors, {
          unmasked: step.unmasked,
          ...(step.badShares.length ? { badShares: step.badShares } : {}),
        });
    }
  }

  protected abandonRound(s: TaskSettings, p: RoundPointer, reason: string, detail?: string): void {
    this.ctx.storage.transactionSync(() => {
      this.round.recordAbandoned(p, reason, { ...this.#shards.summaries(p), ...(detail && { detail }) });
      this.#next(s, p);
    });
  }

  /**
   * Steps the server optimizer on the round's mean update, publishes, then commits the round. A non-finite model
   * throws (the round is abandoned); a publishing failure is retried (retryLater).
   */
  async #completeRound(
    s: TaskSettings,
    p: RoundPointer,
    mean: Float32Array,
    survivors: number,
    outcome: Partial<RoundRecord>,
  ): Promise<string | undefined> {
    const stepped = stepModel(this.store, s, mean);
    let version: string;
    try {
      // Publish before committing the round.
      version = await publishRound(this.env, s, p.round, stepped.weights);
    } catch (e) {
      return this.retryLater(s, p, 'publishing', e);
    }
    const rec = this.store.record(p.round)!;
    this.ctx.storage.transactionSync(() => {
      commitStep(this.store, stepped);
      this.store.setRecord(
        publishedRecord(this.store, s, rec, { outcome, survivors, updateNorm: stepped.updateNorm, version }),
      );
      const { publishFailures: _f, retryAt: _r, ...rest } = p;
      const moved = { ...rest, weightsVersion: p.weightsVersion + 1 };
      this.store.setPointer(moved);
      this.#next(s, moved);
    });
    return version;
  }

  // ---- sharded rounds (shard-coordinator.ts) -------------------------------------------------------------------

  /** A shard's outcome; its sum joins the round's total once. Returns the version the round published. */
  async shardReport(
    roundId: string,
    index: number,
    report: ShardReport,
    sum?: Uint32Array,
  ): Promise<{ accepted: boolean; published?: string }> {
    const s = this.store.settings();
    if (!s) return { accepted: false };
    return this.exclusive(async () => {
      if (!this.#shards.accept(s, this.store.pointer(), roundId, index, report, sum)) return { accepted: false };
      return { accepted: true, published: await this.advance(false) };
    });
  }

  /** The aggregator that takes `device`'s messages in round `roundId`, when that round is sharded. */
  shardFor(roundId: string, device: string): { shard?: string } {
    if (!this.store.settings()) return {};
    return this.#shards.shardFor(this.store.pointer(), roundId, device);
  }

  // ---- operators ---------------------------------------------------------------------------------------------------

  /**
   * Held-out accuracy of a published round, as measured by the operator's evaluation job. With a publication gate
   * (TaskSettings.gate) it decides whether the round is served: passed — the task's alias (and `gate.promote`) move
   * to its version; failed — recorded with why, and nothing moves. Returns whether an alias moved.
   */
  evaluation(round: number, accuracy: number): Promise<EvaluationResult | Refusal> {
    return this.exclusive(async () => {
      const s = this.store.settings();
      return s ? recordEvaluation(this.env, this.store, s, round, accuracy) : this.noTask();
    });
  }

  /** The task's status; `admin`: the operator's view, which names devices (task-views.ts). */
  status(admin = false): TaskStatus | Refusal {
    const s = this.store.settings();
    if (!s) return this.noTask();
    const p = this.store.pointer();
    return taskStatus(this.store, s, p, this.#shards.progress(p), admin);
  }

  /** The task's line in GET /v1/tasks. */
  summary(): TaskSummary | Refusal {
    const s = this.store.settings();
    if (!s) return this.noTask();
    return taskSummary(this.store, s, this.store.pointer());
  }

  /** Closes the current stage now (operators and tests; deadlines do the same). */
  async closeStage(): Promise<{ stage: TaskStage; published?: string } | Refusal> {
    if (!this.store.settings()) return this.noTask();
    return this.exclusive(async () => ({ published: await this.advance(true), stage: this.store.pointer().stage }));
  }
}
