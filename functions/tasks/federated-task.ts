/**
 * FederatedTask: the Durable Object (SQLite) that runs one federated task — rounds of SecAgg+ (federated/secagg)
 * over the devices that check in, a server optimizer step on the unmasked mean update, and a new quantized model
 * version published to the catalog after every round. This file is the shell that orders things; storage is
 * task-store.ts, publishing publish.ts, masked inputs streaming in masked-input-stream.ts, sharded rounds (this
 * object as coordinator, or as one shard's aggregator) shard-coordination.ts, what routes get back task-answers.ts;
 * the protocol is federated/secagg, when a stage closes federated/aggregation/round-controller.ts, the update's
 * encoding update-codec.ts, settings checks task-settings.ts.
 *
 * Masked inputs are not stored: each is added to the running sum (O(d) memory and storage however many devices).
 * Stage deadlines are alarms; a stage also closes as soon as everyone it waits for has answered.
 * Whatever one device sends, the task moves on: a message is authenticated before it costs anything (rate limit
 * included), revealed shares are checked on arrival and reconstructed robustly at the end, and any failure while
 * closing a stage or finishing a round abandons that round with the reason instead of escaping from the alarm
 * (which would leave the pointer where it is, every later request failing the same way, also after a restart).
 */
import { DurableObject } from 'cloudflare:workers';
import { l2Norm, serverStep, type ServerOptimizerState } from '../../federated/aggregation/server-optimizer.ts';
import {
  type RoundInfo,
  type RoundRecord,
  type TaskSettings,
  type TaskLifecycle,
  type TaskStage,
  type TaskStatus,
  type TaskSummary,
  clientEpsilon,
  ddgaussFor,
  fixedPointOf,
  relaySigningBytes,
  relayToJson,
  taskUpdateCodec,
  updateLength,
} from '../../federated/aggregation/task-protocol.ts';
import { UpdateDecodeError } from '../../federated/aggregation/update-codec.ts';
import { extendedDeadline, nextAction, roundMinimum } from '../../federated/aggregation/round-controller.ts';
import {
  DEFAULT_IDLE_SECONDS,
  TaskSettingsError,
  validateTaskSettings,
} from '../../federated/aggregation/task-settings.ts';
import { concat, equal, fromBase64, toBase64, u32, u8 } from '../../federated/bytes.ts';
import {
  type DeviceMessage,
  type KeysBroadcast,
  SecAggAbort,
  SecAggAuthError,
  SecAggError,
  type SharesDelivery,
  type UnmaskRequest,
} from '../../federated/secagg/messages.ts';
import { sha256, verify } from '../../federated/secagg/primitives.ts';
import { randomBytes } from '../../federated/random.ts';
import {
  type ServerState,
  serverAccept,
  serverAcceptMaskedChunks,
  serverAuthenticate,
  serverCloseAdvertise,
  serverCloseMasked,
  serverCloseShares,
  serverCloseUnmask,
  serverInit,
  serverReceive,
} from '../../federated/secagg/server.ts';
import { decodeMessage } from '../../federated/secagg/wire.ts';
import type { ShardReport } from '../../federated/aggregation/sharded-round.ts';
import { DeviceRateLimit } from './device-rate-limit.ts';
import { streamToScratch } from './masked-input-stream.ts';
import { publishRound } from './publish.ts';
import { ShardCoordination, type ShardStart } from './shard-coordination.ts';
import {
  type ReceiveResult,
  type Refusal,
  type RelayKind,
  type RelayResult,
  describe,
  refuse,
} from './task-answers.ts';
import { type RoundPointer, TaskStore } from './task-store.ts';

/** Longest a relay request is held open waiting for its stage to close (long poll). */
export const MAX_RELAY_WAIT_SECONDS = 25;
/** Publishing a finished round (R2, catalog) — or a shard's report — is tried this many times before the round is abandoned. */
const MAX_PUBLISH_ATTEMPTS = 4;

const tooFast = (device: string, retryAfterSeconds: number) =>
  refuse(429, `device '${device}' is sending too many requests; retry after ${retryAfterSeconds} s`, retryAfterSeconds);

export class FederatedTask extends DurableObject<Env> {
  readonly #store: TaskStore;
  #server: ServerState | undefined;
  #relays: { broadcast?: Map<string, KeysBroadcast>; delivery?: Map<string, SharesDelivery>; unmask?: UnmaskRequest } =
    {};
  #queue: Promise<unknown> = Promise.resolve();
  /** Relay long polls waiting for the current stage to change. */
  #waiters = new Set<() => void>();
  /** Round and stage the waiters last saw. */
  #stageKey = '';
  readonly #messageLimit = new DeviceRateLimit({ capacity: 12, refillPerSecond: 0.5 });
  readonly #pollLimit = new DeviceRateLimit({ capacity: 30, refillPerSecond: 2 });
  #weightsCache: { version: number; bytes: Uint8Array } | undefined;
  /** A sharded round's coordinator or one shard's aggregator: what either does (shard-coordination.ts). */
  readonly #shards: ShardCoordination;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new TaskStore(ctx.storage.sql);
    this.#shards = new ShardCoordination(this.#store, ctx.storage, env);
    // Long polls wait for a stage to close: wake them when the round or stage moves, not on every deadline
    // extension (one per message — with 200 devices waiting, that was 200 re-checks per message).
    this.#store.onPointer = ({ round, stage }) => {
      if (this.#stageKey !== `${round}/${stage}`) {
        this.#stageKey = `${round}/${stage}`;
        queueMicrotask(() => this.#wake());
      }
    };
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }
  #noTask(): Refusal {
    return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
  }

  /** One mutation at a time: a round's close (which awaits crypto and R2) never interleaves with a message. */
  #exclusive<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  // ---- task lifecycle ----------------------------------------------------------------------------------------

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
    return this.#exclusive(async () => {
      const existing = this.#store.settings();
      if (existing)
        return JSON.stringify(existing) === JSON.stringify(settings)
          ? { created: false }
          : refuse(409, `task '${settings.task}' already exists with other settings`);
      this.ctx.storage.transactionSync(() => {
        this.#store.setMeta('settings', settings);
        this.#store.setMeta('enrollment', tokenDigest);
        this.#store.writeBlob('weights', u8(weights));
        this.#startRound(settings, 1, 0);
      });
      return { created: true };
    });
  }

  #startRound(s: TaskSettings, round: number, weightsVersion: number): void {
    const pointer: RoundPointer = {
      round,
      roundId: `${s.task}/${round}/${toBase64(randomBytes(9))}`,
      graphSeed: toBase64(randomBytes(32)),
      stage: 'advertise-keys',
      opened: Date.now(),
      deadline: Date.now() + s.stageSeconds * 1000,
      weightsVersion,
    };
    this.#store.setPointer(pointer);
    this.#store.clearMessages();
    this.#store.deleteBlob('sum');
    this.#store.setRecord({
      round,
      status: 'running',
      advertised: 0,
      shared: 0,
      submitted: 0,
      unmasked: 0,
      dropouts: 0,
      startedAt: new Date().toISOString(),
    });
    this.#server = undefined;
    this.#relays = {};
    void this.ctx.storage.setAlarm(pointer.deadline);
  }

  /** The SecAgg+ server state of the current round: in memory, or rebuilt from storage after a restart. */
  async #state(s: TaskSettings, p: RoundPointer): Promise<ServerState> {
    if (this.#server && this.#server.config.roundId === p.roundId) return this.#server;
    const state = serverInit(
      {
        roundId: p.roundId,
        neighbours: s.secagg.neighbours,
        threshold: s.secagg.threshold,
        graphSeed: fromBase64(p.graphSeed),
        length: updateLength(s),
      },
      this.#store.devices(),
    );
    this.#relays = {};
    for (const row of this.#store.messages(p.round)) {
      if (row.kind === 'close') await this.#close(state, s, p.round);
      else {
        try {
          // Every stored message was accepted once; one that no longer is (rules tightened since) is skipped,
          // never allowed to stop the replay — that would fail every request of the task for good.
          await serverReceive(state, decodeMessage(row.bytes!));
        } catch (e) {
          if (!(e instanceof SecAggError)) throw e;
          console.warn(
            `task ${s.task} round ${p.round}: skipping a stored ${row.kind} message on replay: ${e.message}`,
          );
        }
      }
    }
    if (state.stage === 'masked-input' || state.stage === 'unmask') {
      // Masked inputs are not replayed: the running sum and who is in it come back from storage.
      const sum = this.#store.readBlob('sum');
      if (sum) state.sum.set(u32(sum, 'stored sum'));
      state.survivors = this.#store.contributors(p.round);
    }
    this.#server = state;
    return state;
  }

  /** Closes the state's current stage (also used when replaying). */
  async #close(state: ServerState, s: TaskSettings, round: number): Promise<void> {
    switch (state.stage) {
      case 'advertise-keys':
        this.#relays.broadcast = await serverCloseAdvertise(state);
        break;
      case 'share-keys':
        this.#relays.delivery = serverCloseShares(state);
        break;
      case 'masked-input': {
        // The survivor list must be the stored one when replaying (masked inputs are not in `messages`).
        state.survivors = this.#store.contributors(round);
        if (state.survivors.length < s.minDevices)
          throw new SecAggAbort(`${state.survivors.length} masked inputs arrived; the task needs ${s.minDevices}`);
        this.#relays.unmask = serverCloseMasked(state);
        break;
      }
      default:
        throw new SecAggError(`cannot close stage '${state.stage}'`);
    }
  }

  /**
   * Closes the current stage if everyone answered or its deadline passed; finishes the round after unmask.
   * Never throws for a round's sake: whatever goes wrong closing or finishing abandons the round with the reason
   * and starts the next, so the pointer always moves.
   */
  async #advance(force: boolean): Promise<string | undefined> {
    const s = this.#store.settings();
    // A paused task's stages do not move: no deadline passes, no round closes or publishes until it resumes.
    if (!s || this.#paused()) return;
    try {
      return await this.#advanceOrThrow(s, force);
    } catch (e) {
      const expected = e instanceof SecAggAbort || e instanceof SecAggError;
      if (!expected)
        console.error(
          `task ${s.task}: abandoning round ${this.#store.pointer().round} after an unexpected failure:`,
          e,
        );
      // Memory may be half-way through a close: the next round starts from storage.
      this.#server = undefined;
      this.#abandon(
        s,
        this.#store.pointer(),
        expected ? describe(e) : `the round could not be completed: ${describe(e)}`,
      );
      return;
    }
  }

  #abandon(s: TaskSettings, p: RoundPointer, reason: string): void {
    if (p.stage === 'finished') return;
    const rec = this.#store.record(p.round)!;
    this.ctx.storage.transactionSync(() => {
      this.#store.setRecord({
        ...rec,
        status: 'abandoned',
        reason,
        dropouts: rec.advertised - rec.unmasked,
        endedAt: new Date().toISOString(),
        ...this.#shards.summaries(p),
      });
      this.#next(s, p);
    });
    const role = this.#shards.role();
    if (role) this.#shards.reportAbandoned(s, p, role, reason);
  }

  async #advanceOrThrow(s: TaskSettings, force: boolean): Promise<string | undefined> {
    const p = this.#store.pointer();
    if (p.stage === 'finished') return;
    const sharded = this.#shards.round(p);
    if (sharded && p.stage !== 'advertise-keys') {
      const due = this.#shards.due(p, sharded, force);
      return due && this.#completeRound(s, p, due.sum, due.survivors, due.outcome);
    }
    const state = await this.#state(s, p);
    const progress = {
      'advertise-keys': () => ({ answered: Object.keys(state.ads).length, expected: s.devicesPerRound }),
      'share-keys': () => ({ answered: Object.keys(state.shares).length, expected: state.roster.length }),
      'masked-input': () => ({ answered: state.survivors.length, expected: state.sharers.length }),
      unmask: () => ({ answered: Object.keys(state.unmasks).length, expected: state.survivors.length }),
    }[p.stage]();
    const action = nextAction(
      { stage: p.stage, ...progress },
      { stageSeconds: s.stageSeconds, minStart: roundMinimum(s), idleSeconds: s.idleSeconds ?? DEFAULT_IDLE_SECONDS },
      { now: Date.now(), deadline: p.deadline, opened: p.opened, force, retryAt: p.retryAt },
    );
    if (action.kind === 'wait') return;
    if (action.kind === 'expire') {
      this.#pause(
        `check-in expired: ${progress.answered} of the ${roundMinimum(s)} devices a round needs checked in within ${s.idleSeconds ?? DEFAULT_IDLE_SECONDS} s`,
      );
      return;
    }
    if (action.kind === 'keep-open') {
      // Too few devices have checked in yet (or no masked input arrived yet): keep the stage open rather than abandon the round.
      this.#store.setPointer({ ...p, deadline: action.deadline });
      await this.ctx.storage.setAlarm(action.deadline);
      return;
    }
    if (action.kind === 'finish') return await this.#finishRound(s, p, state);
    if (p.stage === 'advertise-keys' && ShardCoordination.shards(s)) {
      await this.#shards.start(s, p);
      // The coordinator holds no SecAgg+ state past check-in: the aggregators do.
      this.#server = undefined;
      this.#relays = {};
      return this.#advanceOrThrow(s, false);
    }
    await this.#close(state, s, p.round);
    const next = state.stage as TaskStage;
    this.ctx.storage.transactionSync(() => {
      this.#store.addMessage(p.round, 'close');
      this.#store.setPointer({ ...p, stage: next, opened: Date.now(), deadline: Date.now() + s.stageSeconds * 1000 });
    });
    await this.ctx.storage.setAlarm(Date.now() + s.stageSeconds * 1000);
    // A stage whose devices all answered already (e.g. everyone dropped) closes at once.
    return this.#advanceOrThrow(s, false);
  }

  /** An answer gives its stage more time (round-controller.ts: extendedDeadline). */
  async #extendDeadline(s: TaskSettings, p: RoundPointer): Promise<void> {
    const now = Date.now();
    const deadline = extendedDeadline({
      now,
      deadline: p.deadline,
      opened: p.opened ?? now,
      stageSeconds: s.stageSeconds,
    });
    if (deadline === undefined) return;
    this.#store.setPointer({ ...p, deadline });
    await this.ctx.storage.setAlarm(deadline);
  }

  #next(s: TaskSettings, p: RoundPointer): void {
    if (p.round >= s.rounds) {
      this.#store.setPointer({ ...p, stage: 'finished' });
      // Nothing is relayed once the task (or a shard's one round) is over: its state and relays go now.
      this.#server = undefined;
      this.#relays = {};
      // A shard's aggregator lives for one round: its storage goes after a while (alarm()).
      if (this.#shards.role()) this.#shards.retire();
      else void this.ctx.storage.deleteAlarm();
    } else this.#startRound(s, p.round + 1, p.weightsVersion);
  }

  /**
   * Unmasks the sum (robustly: bad shares are left out and their senders recorded); then the task's own object
   * completes the round (#completeRound) and a shard's aggregator reports its sum to the coordinator.
   */
  async #finishRound(s: TaskSettings, p: RoundPointer, state: ServerState): Promise<string | undefined> {
    const result = await serverCloseUnmask(state);
    const unmasked = Object.keys(state.unmasks).length;
    const role = this.#shards.role();
    if (role) {
      const report = {
        status: 'published' as const,
        devices: s.devicesPerRound,
        shared: state.sharers.length,
        submitted: state.survivors.length,
        survivors: result.survivors.length,
        unmasked,
        badShares: result.badShares,
        epsilon: this.#store.epsilons(),
      };
      let published: string | undefined;
      try {
        published = await this.#shards.report(s, p, role, result.sum, report);
      } catch (e) {
        return this.#retryLater(s, p, "reporting the shard's sum", e);
      }
      this.ctx.storage.transactionSync(() => {
        this.#shards.reported(p, report);
        this.#next(s, p);
      });
      return published;
    }
    return this.#completeRound(s, p, result.sum, result.survivors.length, {
      unmasked,
      ...(result.badShares.length ? { badShares: result.badShares } : {}),
    });
  }

  /**
   * A publish (or a shard's report) that failed: the round is tried again from storage after a pause, up to
   * MAX_PUBLISH_ATTEMPTS times; then this throws and the round is abandoned.
   */
  async #retryLater(s: TaskSettings, p: RoundPointer, what: string, e: unknown): Promise<undefined> {
    const failures = (p.publishFailures ?? 0) + 1;
    if (failures >= MAX_PUBLISH_ATTEMPTS) throw new Error(`${what} failed ${failures} times, last: ${describe(e)}`);
    console.error(
      `task ${s.task} round ${p.round}: ${what} failed (attempt ${failures} of ${MAX_PUBLISH_ATTEMPTS}), retrying:`,
      e,
    );
    // The in-memory state is unmasked now: the retry rebuilds it from storage.
    this.#server = undefined;
    const retryAt = Date.now() + Math.max(5, s.stageSeconds) * 1000;
    this.#store.setPointer({ ...p, publishFailures: failures, retryAt });
    await this.ctx.storage.setAlarm(retryAt);
    return undefined;
  }

  /**
   * Steps the server optimizer on the survivors' mean update, publishes, then commits the round. A non-finite model
   * throws (the round is abandoned); a publishing failure is retried (#retryLater).
   */
  async #completeRound(
    s: TaskSettings,
    p: RoundPointer,
    sum: Uint32Array,
    survivors: number,
    outcome: Partial<RoundRecord>,
  ): Promise<string | undefined> {
    const rec = this.#store.record(p.round)!;
    const mean = await this.#meanUpdate(s, p, sum, survivors);
    const weights = this.#store.floats('weights')!.slice();
    const opt: ServerOptimizerState = {
      m: this.#store.floats('opt-m')?.slice(),
      v: this.#store.floats('opt-v')?.slice(),
    };
    const nextOpt = serverStep(s.serverOptimizer, weights, mean, opt);
    if (!weights.every(Number.isFinite))
      throw new SecAggAbort('the server optimizer step gave non-finite weights; nothing was published');
    let version: string;
    try {
      // Publish before committing the round.
      version = await publishRound(this.env, s, p.round, weights);
    } catch (e) {
      return this.#retryLater(s, p, 'publishing', e);
    }
    let epsilon: number | undefined;
    try {
      epsilon = clientEpsilon(s, this.#store.publishedRounds() + 1, this.#store.deviceCount());
    } catch (e) {
      console.error(`task ${s.task} round ${p.round}: client-level ε could not be computed:`, e);
    }
    this.ctx.storage.transactionSync(() => {
      this.#store.writeBlob('weights', u8(weights));
      if (nextOpt.m) this.#store.writeBlob('opt-m', u8(nextOpt.m));
      if (nextOpt.v) this.#store.writeBlob('opt-v', u8(nextOpt.v));
      this.#store.setRecord({
        ...rec,
        ...outcome,
        status: 'published',
        dropouts: rec.advertised - survivors,
        updateNorm: l2Norm(mean),
        version,
        epsilon: this.#store.maxEpsilon(),
        clientEpsilon: epsilon,
        endedAt: new Date().toISOString(),
      });
      const { publishFailures: _f, retryAt: _r, ...rest } = p;
      const moved = { ...rest, weightsVersion: p.weightsVersion + 1 };
      this.#store.setPointer(moved);
      this.#next(s, moved);
    });
    return version;
  }

  /** The survivors' mean update from the unmasked sum (update-codec.ts); a sum that decodes to nothing usable abandons the round. */
  async #meanUpdate(s: TaskSettings, p: RoundPointer, sum: Uint32Array, survivors: number): Promise<Float32Array> {
    try {
      return await taskUpdateCodec(s, fromBase64(p.graphSeed)).decode(sum, survivors);
    } catch (e) {
      if (e instanceof UpdateDecodeError) throw new SecAggAbort(e.message);
      throw e;
    }
  }

  // ---- sharded rounds (shard-coordination.ts) -----------------------------------------------------------------

  /** (Aggregator) Takes one shard of a round from the coordinator (ShardCoordination.begin). */
  startShard(start: ShardStart): { started: boolean } {
    return this.#shards.begin(start);
  }

  /** (Coordinator) A shard's outcome; its sum joins the round's total once. Returns the version the round published. */
  async shardReport(
    roundId: string,
    index: number,
    report: ShardReport,
    sum?: Uint32Array,
  ): Promise<{ accepted: boolean; published?: string }> {
    const s = this.#store.settings();
    if (!s) return { accepted: false };
    return this.#exclusive(async () => {
      if (!this.#shards.accept(s, this.#store.pointer(), roundId, index, report, sum)) return { accepted: false };
      return { accepted: true, published: await this.#advance(false) };
    });
  }

  /** (Coordinator) The aggregator that takes `device`'s messages in round `roundId`, when that round is sharded. */
  shardFor(roundId: string, device: string): { shard?: string } {
    if (!this.#store.settings()) return {};
    return this.#shards.shardFor(this.#store.pointer(), roundId, device);
  }

  override async alarm(): Promise<void> {
    // A shard's aggregator whose round is over deletes itself once its retention is over (#next set that alarm).
    if (this.#shards.role() && this.#store.pointer()?.stage === 'finished') return this.#discard();
    await this.#exclusive(() => this.#advance(false));
  }

  // ---- device-facing ---------------------------------------------------------------------------------------

  async enroll(tokenDigest: string, device: string, identityKey: Uint8Array): Promise<{ enrolled: boolean } | Refusal> {
    if (!this.#store.settings()) return this.#noTask();
    const expected = new TextEncoder().encode(this.#store.meta<string>('enrollment')!),
      given = new TextEncoder().encode(tokenDigest);
    if (expected.byteLength !== given.byteLength || !crypto.subtle.timingSafeEqual(expected, given))
      return refuse(403, 'enrollment token is not valid for this task');
    const known = this.#store.identityKey(device);
    if (known)
      return equal(known, identityKey)
        ? { enrolled: false }
        : refuse(409, `device '${device}' is enrolled with another identity key`);
    this.#store.addDevice(device, identityKey);
    if (this.#server) this.#server.enrolled = { ...this.#server.enrolled, [device]: identityKey };
    return { enrolled: true };
  }

  roundInfo(): RoundInfo | Refusal {
    const s = this.#store.settings();
    if (!s) return this.#noTask();
    const p = this.#store.pointer();
    const advertised = this.#store.countMessages(p.round, 'advertise-keys');
    return {
      task: s.task,
      round: p.round,
      roundId: p.roundId,
      stage: p.stage,
      open: p.stage === 'advertise-keys' && advertised < s.devicesPerRound && !this.#paused(),
      graphSeed: p.graphSeed,
      neighbours: s.secagg.neighbours,
      threshold: s.secagg.threshold,
      minDevices: s.minDevices,
      length: updateLength(s),
      fixedPoint: fixedPointOf(s),
      distributedDp: ddgaussFor(s),
      weightsVersion: p.weightsVersion,
      training: s.training,
      privacy: s.privacy,
      spec: s.spec,
      ...(s.base && { base: s.base }),
      deadline: new Date(p.deadline).toISOString(),
    };
  }

  weights(): { version: number; bytes: Uint8Array } | Refusal {
    if (!this.#store.settings()) return this.#noTask();
    const version = this.#store.pointer().weightsVersion;
    // Every device of a round downloads them at its start: read once per version, not once per device.
    if (this.#weightsCache?.version !== version)
      this.#weightsCache = { version, bytes: this.#store.readBlob('weights')! };
    return this.#weightsCache;
  }

  /**
   * One SecAgg+ message from a device (wire format, read by the route bounded in size and time). Decoded against
   * the task's update length before it waits for its turn (#accept). Masked inputs normally stream in through
   * receiveMasked; one sent whole is accepted the same way.
   */
  async receive(bytes: Uint8Array, epsilonSpent?: number): Promise<ReceiveResult> {
    const s = this.#store.settings();
    if (!s) return this.#noTask();
    if (!(bytes instanceof Uint8Array)) return refuse(400, 'not a SecAgg+ message: the body is not bytes');
    let m: DeviceMessage;
    try {
      m = decodeMessage(bytes, { length: updateLength(s) });
    } catch (e) {
      if (!(e instanceof SecAggError)) throw e;
      return refuse(400, `not a SecAgg+ message: ${e.message}`);
    }
    if (m.stage !== 'masked-input') return this.#accept(s, m, { bytes }, epsilonSpent);
    const masked = m.masked;
    return this.#accept(s, m, { payloadDigest: await sha256(u8(masked)), chunks: () => [masked] }, epsilonSpent);
  }

  /**
   * A masked input streamed in: `payload` is its 4·length bytes of words, kept in scratch storage while it arrives
   * (masked-input-stream.ts) and added to the running sum chunk by chunk once the sender is authenticated. Nothing
   * reaches the sum before the whole input arrived and verified.
   */
  async receiveMasked(
    head: { roundId: string; from: string; signature: Uint8Array },
    payload: ReadableStream<Uint8Array>,
    epsilonSpent?: number,
  ): Promise<ReceiveResult> {
    const s = this.#store.settings();
    if (!s) {
      await payload.cancel();
      return this.#noTask();
    }
    let scratch: string | undefined;
    try {
      const input = await streamToScratch(this.#store, payload, updateLength(s), (id) => (scratch = id));
      if (!input.ok) return refuse(400, input.error);
      const m: DeviceMessage = { stage: 'masked-input', ...head, masked: new Uint32Array(0) };
      return await this.#accept(s, m, { payloadDigest: input.payloadDigest, chunks: input.chunks }, epsilonSpent);
    } finally {
      if (scratch) this.#store.deleteScratch(scratch);
    }
  }

  /**
   * A decoded message on its turn: a byte-identical resend is a no-op (a masked input: the same signature and payload
   * digest), then the sender and signature are checked (serverAuthenticate) and only then the sender's rate limit is
   * spent — a forger cannot use up another device's tokens. `epsilonSpent` is what the device reports having spent.
   */
  #accept(
    s: TaskSettings,
    m: DeviceMessage,
    body: { bytes: Uint8Array } | { payloadDigest: Uint8Array; chunks: () => Iterable<Uint32Array> },
    epsilonSpent?: number,
  ): Promise<ReceiveResult> {
    return this.#exclusive(async (): Promise<ReceiveResult> => {
      // Deadlines are checked first: a late message meets the next stage.
      await this.#advance(false);
      const p = this.#store.pointer();
      if (p.stage === 'finished') return refuse(422, 'the task has finished');
      if (this.#paused())
        return refuse(409, `the task is paused (${this.#paused()!.reason}); send again once it resumes`);
      // Past check-in, a sharded round's messages go to the sender's aggregator (the route asks shardFor first).
      if (this.#shards.round(p) && p.stage !== 'advertise-keys')
        return refuse(
          422,
          m.stage === 'advertise-keys'
            ? `check-in for round ${p.round} has closed; check in for the next round`
            : `${m.from} is not in a shard of round ${p.round}`,
        );
      const state = await this.#state(s, p);
      const current = m.roundId === p.roundId;
      const digest = 'payloadDigest' in body ? toBase64(await sha256(concat(m.signature, body.payloadDigest))) : '';
      const prior = !current
        ? undefined
        : m.stage === 'masked-input'
          ? this.#store.contribution(p.round, m.from)
          : this.#store.message(p.round, m.stage, m.from);
      const same =
        prior !== undefined &&
        (typeof prior === 'string' ? prior === digest : 'bytes' in body && equal(prior, body.bytes));
      if (same) return { accepted: true as const, duplicate: true, stage: p.stage };
      try {
        await serverAuthenticate(state, m, 'payloadDigest' in body ? body.payloadDigest : undefined);
      } catch (e) {
        if (!(e instanceof SecAggError)) throw e;
        return refuse(e instanceof SecAggAuthError ? 403 : 422, e.message);
      }
      if (prior !== undefined)
        return refuse(
          409,
          `${m.from} already sent a different ${m.stage === 'masked-input' ? 'masked input' : `${m.stage} message`} this round`,
        );
      // Only now is the sender known to be who it says: its tokens, not a forger's.
      const limited = this.#messageLimit.take(m.from);
      if (!limited.ok) return tooFast(m.from, limited.retryAfterSeconds);
      if (
        m.stage === 'advertise-keys' &&
        p.stage === 'advertise-keys' &&
        Object.keys(state.ads).length >= s.devicesPerRound
      )
        return refuse(422, 'this round is full; check in for the next one');
      try {
        if ('chunks' in body) serverAcceptMaskedChunks(state, m.from, body.chunks());
        else serverAccept(state, m);
      } catch (e) {
        if (!(e instanceof SecAggError)) throw e;
        return refuse(422, e.message);
      }
      const rec = this.#store.record(p.round)!;
      this.ctx.storage.transactionSync(() => {
        if (m.stage === 'masked-input') {
          this.#store.writeBlob('sum', u8(state.sum));
          this.#store.addContribution(p.round, m.from, digest);
        } else {
          this.#store.addMessage(p.round, m.stage, m.from, (body as { bytes: Uint8Array }).bytes);
        }
        const field = (
          {
            'advertise-keys': 'advertised',
            'share-keys': 'shared',
            'masked-input': 'submitted',
            unmask: 'unmasked',
          } as const
        )[m.stage];
        this.#store.setRecord({ ...rec, [field]: rec[field] + 1 });
        if (epsilonSpent !== undefined && Number.isFinite(epsilonSpent))
          this.#store.reportEpsilon(m.from, epsilonSpent);
      });
      if (m.stage === p.stage) await this.#extendDeadline(s, p);
      // The message is stored: whatever closing the stage does now, this device's answer stands (#advance never throws for the round's sake).
      const published = await this.#advance(false);
      return { accepted: true as const, duplicate: false, stage: this.#store.pointer().stage, published };
    }).catch((e) => {
      // Storage and memory must agree: after an unexpected failure, start again from what was stored.
      this.#server = undefined;
      throw e;
    });
  }

  /**
   * What the server relays to `device` after a stage closed; 425 while that stage is still open. Only the device
   * itself may ask: `signature` is its Ed25519 signature over (task, round, kind, device) (relaySigningBytes), so
   * nobody else can read a round's roster or test who takes part. With `waitSeconds` the request is held until
   * the stage closes or the wait is over (long poll: one request per stage, not a poll every few hundred ms).
   */
  async relay(
    kind: RelayKind,
    round: number,
    device: string,
    signature: Uint8Array | undefined,
    waitSeconds = 0,
  ): Promise<RelayResult> {
    const s = this.#store.settings();
    if (!s) return this.#noTask();
    if (!signature) return refuse(401, "relays need the device's signature: send Fedge-Device-Signature");
    const key = this.#store.identityKey(device);
    if (!key || !(await verify(key, relaySigningBytes(s.task, round, kind, device), signature)))
      return refuse(403, `the signature is not ${device}'s (or ${device} is not enrolled)`);
    const limited = this.#pollLimit.take(device);
    if (!limited.ok) return tooFast(device, limited.retryAfterSeconds);
    const until = Date.now() + Math.min(waitSeconds, MAX_RELAY_WAIT_SECONDS) * 1000;
    for (;;) {
      const r = await this.#relayNow(kind, round, device);
      const open = 'refused' in r && r.refused.status === 425;
      if (!open || Date.now() >= until) return r;
      // Sleep until the pointer moves (a stage closed) or the wait is over; the stage's alarm bounds the wait too.
      await new Promise<void>((resolve) => {
        const done = () => (clearTimeout(timer), this.#waiters.delete(done), resolve());
        const timer = setTimeout(done, Math.max(0, until - Date.now()));
        this.#waiters.add(done);
      });
    }
  }

  async #relayNow(kind: RelayKind, round: number, device: string): Promise<RelayResult> {
    return this.#exclusive(async (): Promise<RelayResult> => {
      const s = this.#store.settings();
      if (!s) return this.#noTask();
      await this.#advance(false);
      const p = this.#store.pointer();
      if (round !== p.round) return refuse(422, `round ${round} is over; the task is at round ${p.round}`);
      if (p.stage === 'finished') return refuse(422, 'the task has finished');
      const sharded = this.#shards.round(p);
      if (sharded && p.stage !== 'advertise-keys') return this.#shards.relay(p, sharded, device);
      await this.#state(s, p);
      const r = this.#relays;
      if (kind === 'broadcast')
        return r.broadcast
          ? r.broadcast.has(device)
            ? { json: relayToJson.broadcast(r.broadcast.get(device)!) }
            : refuse(422, `${device} is not in round ${round}`)
          : refuse(425, 'advertise-keys is still open');
      if (kind === 'delivery')
        return r.delivery
          ? r.delivery.has(device)
            ? { json: relayToJson.delivery(r.delivery.get(device)!) }
            : refuse(422, `${device} did not share keys in round ${round}`)
          : refuse(425, 'share-keys is still open');
      return r.unmask
        ? r.unmask.survivors.includes(device)
          ? { json: r.unmask }
          : refuse(422, `${device}'s masked input is not in round ${round}`)
        : refuse(425, 'masked-input is still open');
    }).catch((e) => {
      this.#server = undefined;
      throw e;
    });
  }

  /** Held-out accuracy of a published round, as measured by the operator's evaluation job. */
  evaluation(round: number, accuracy: number): { ok: true } | Refusal {
    if (!this.#store.settings()) return this.#noTask();
    const rec = this.#store.record(round);
    if (!rec) return refuse(404, `no round ${round}`);
    if (rec.status !== 'published') return refuse(422, `round ${round} published no model`);
    this.#store.setRecord({ ...rec, accuracy });
    return { ok: true };
  }

  status(): TaskStatus | Refusal {
    const s = this.#store.settings();
    if (!s) return this.#noTask();
    const p = this.#store.pointer();
    const progress = this.#shards.progress(p);
    const history = this.#store
      .history()
      .map((h) => (progress && h.round === p.round && h.status === 'running' ? { ...h, ...progress } : h));
    return {
      task: s.task,
      model: s.model,
      alias: s.alias,
      status: this.#lifecycle(p),
      ...(this.#paused() && { pausedReason: this.#paused()!.reason }),
      round: p.round,
      stage: p.stage,
      rounds: s.rounds,
      devicesPerRound: s.devicesPerRound,
      minDevices: roundMinimum(s),
      enrolledDevices: this.#store.deviceCount(),
      ...(s.base && {
        base: {
          model: s.base.model,
          version: s.base.version,
          trainable: s.base.trainable,
          layers: s.base.head.layers.flatMap((l) => l.nodes),
        },
      }),
      history,
      publishedVersions: history.filter((h) => h.version).map((h) => h.version!),
      privacy: s.privacy ? { ...s.privacy, maxSpent: this.#store.maxEpsilon() } : undefined,
      distributedDp: s.distributedDp && {
        ...s.distributedDp,
        epsilon: history.findLast((h) => h.clientEpsilon !== undefined)?.clientEpsilon ?? 0,
      },
    };
  }

  /** The task's line in GET /v1/tasks. */
  summary(): TaskSummary | Refusal {
    const s = this.#store.settings();
    if (!s || this.#shards.role()) return this.#noTask();
    const p = this.#store.pointer();
    return {
      task: s.task,
      model: s.model,
      status: this.#lifecycle(p),
      round: p.round,
      stage: p.stage,
      rounds: s.rounds,
      devicesPerRound: s.devicesPerRound,
      enrolledDevices: this.#store.deviceCount(),
      published: this.#store.publishedRounds(),
    };
  }

  // ---- lifecycle (admin) ---------------------------------------------------------------------------------------

  #paused(): { reason: string; since: string } | undefined {
    return this.#store.meta<{ reason: string; since: string }>('paused');
  }

  #lifecycle(p: RoundPointer): TaskLifecycle {
    return p.stage === 'finished' ? 'finished' : this.#paused() ? 'paused' : 'running';
  }

  /** Stops the clock: the round stays where it is (its messages, sum and check-ins kept), nothing closes. */
  #pause(reason: string): void {
    this.#store.setMeta('paused', { reason, since: new Date().toISOString() });
    void this.ctx.storage.deleteAlarm();
    // Long polls see the task paused at once rather than at the end of their wait.
    this.#wake();
  }

  /** Pauses the task (idempotent). A sharded round's shards run their stages on; the round completes on resume. */
  pause(): Promise<{ status: TaskLifecycle } | Refusal> {
    return this.#exclusive(async () => {
      if (!this.#store.settings() || this.#shards.role()) return this.#noTask();
      const p = this.#store.pointer();
      if (p.stage === 'finished') return refuse(409, 'the task has finished; it cannot be paused');
      if (!this.#paused()) this.#pause('paused by the operator');
      return { status: this.#lifecycle(p) };
    });
  }

  /** Resumes a paused task (idempotent): the current stage gets a full stageSeconds from now. */
  resume(): Promise<{ status: TaskLifecycle } | Refusal> {
    return this.#exclusive(async () => {
      const s = this.#store.settings();
      if (!s || this.#shards.role()) return this.#noTask();
      const p = this.#store.pointer();
      if (p.stage === 'finished') return refuse(409, 'the task has finished; it cannot be resumed');
      if (this.#paused()) {
        const now = Date.now();
        this.ctx.storage.transactionSync(() => {
          this.#store.deleteMeta('paused');
          this.#store.setPointer({ ...p, opened: now, deadline: now + s.stageSeconds * 1000 });
        });
        await this.ctx.storage.setAlarm(now + s.stageSeconds * 1000);
      }
      return { status: this.#lifecycle(this.#store.pointer()) };
    });
  }

  /**
   * Ends the task now (idempotent): a round under way is abandoned (nothing of it is released), no round opens
   * again; its published versions stay served. The caller releases the base pin (nothing will publish into it).
   */
  finish(): Promise<{ status: TaskLifecycle; base?: { model: string } } | Refusal> {
    return this.#exclusive(async () => {
      const s = this.#store.settings();
      if (!s || this.#shards.role()) return this.#noTask();
      const p = this.#store.pointer();
      if (p.stage !== 'finished') {
        const rec = this.#store.record(p.round);
        this.ctx.storage.transactionSync(() => {
          if (rec?.status === 'running')
            this.#store.setRecord({
              ...rec,
              status: 'abandoned',
              reason: 'the task was finished by the operator',
              endedAt: new Date().toISOString(),
            });
          this.#store.deleteMeta('paused');
          this.#store.setPointer({ ...p, stage: 'finished' });
        });
        this.#server = undefined;
        this.#relays = {};
        await this.ctx.storage.deleteAlarm();
        // The current round's aggregators would only wait out their deadlines: they go now.
        await this.#shards.discardRound(p);
      }
      return { status: 'finished' as const, ...(s.base && { base: { model: s.base.model } }) };
    });
  }

  /** Deletes everything the task stored (finish first). Its published model versions are the registry's. */
  destroy(): Promise<{ deleted: boolean }> {
    return this.#exclusive(async () => {
      if (!this.#store.settings() || this.#shards.role()) return { deleted: false };
      await this.#shards.discardRound(this.#store.pointer());
      await this.#discard();
      return { deleted: true };
    });
  }

  /** (Aggregator, task) Frees this object's storage and memory; it answers as a task that does not exist. */
  async #discard(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.#server = undefined;
    this.#relays = {};
    this.#weightsCache = undefined;
    this.#store.reset();
    this.#wake();
  }

  /** (Aggregator) The task that started this shard was finished or deleted. */
  async discardShard(): Promise<void> {
    if (this.#shards.role()) await this.#exclusive(() => this.#discard());
  }

  /** Closes the current stage now (operators and tests; deadlines do the same). */
  async closeStage(): Promise<{ stage: TaskStage; published?: string } | Refusal> {
    if (!this.#store.settings()) return this.#noTask();
    return this.#exclusive(async () => ({ published: await this.#advance(true), stage: this.#store.pointer().stage }));
  }
}
