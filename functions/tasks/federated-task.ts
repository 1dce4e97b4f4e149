/**
 * FederatedTask: the Durable Object (SQLite) that runs one federated task — rounds of SecAgg+ (federated/secagg)
 * over the devices that check in, a server optimizer step on the unmasked mean update, and a new quantized model
 * version published to the catalog after every round. This file is the shell that orders things; storage is
 * task-store.ts, publishing publish.ts, the protocol federated/secagg, when a stage closes
 * federated/aggregation/round-controller.ts, the update's encoding update-codec.ts, settings checks task-settings.ts.
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
import { type RoundInfo, type RoundRecord, type TaskSettings, type TaskStage, type TaskStatus, type TaskSummary, clientEpsilon, ddgaussFor, fixedPointOf, relaySigningBytes, relayToJson, taskUpdateCodec, updateLength } from '../../federated/aggregation/task-protocol.ts';
import { UpdateDecodeError } from '../../federated/aggregation/update-codec.ts';
import { extendedDeadline, nextAction } from '../../federated/aggregation/round-controller.ts';
import { TaskSettingsError, validateTaskSettings } from '../../federated/aggregation/task-settings.ts';
import { concat, equal, fromBase64, toBase64 } from '../../federated/secagg/bytes.ts';
import { type DeviceMessage, type KeysBroadcast, SecAggAbort, SecAggError, type SharesDelivery, type UnmaskRequest } from '../../federated/secagg/messages.ts';
import { randomBytes, sha256, verify } from '../../federated/secagg/primitives.ts';
import { type ServerState, serverAccept, serverAcceptMaskedChunks, serverAuthenticate, serverCloseAdvertise, serverCloseMasked, serverCloseShares, serverCloseUnmask, serverInit, serverReceive } from '../../federated/secagg/server.ts';
import { decodeMessage } from '../../federated/secagg/wire.ts';
import { type ShardReport, type ShardedRound, aggregatorName, mergeReports, shardedDeadline } from '../../federated/aggregation/sharded-round.ts';
import { assignShards, shardPlan } from '../../federated/secagg/shards.ts';
import { addMask } from '../../federated/secagg/prg.ts';
import { DeviceRateLimit } from './device-rate-limit.ts';
import { streamToScratch } from './masked-input-stream.ts';
import { publishRound } from './publish.ts';
import { type RoundPointer, TaskStore } from './task-store.ts';

/** Longest a relay request is held open waiting for its stage to close (long poll). */
export const MAX_RELAY_WAIT_SECONDS = 25;
/** Publishing a finished round (R2, catalog) — or a shard's report — is tried this many times before the round is abandoned. */
const MAX_PUBLISH_ATTEMPTS = 4;
/** A finished shard's aggregator keeps its storage this long (late relays get an answer), then deletes it. */
const SHARD_RETENTION_MS = 10 * 60_000;

/** What an aggregator object holds about its place in the task (absent in the task's own object). */
interface ShardRole {
  index: number;
}

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

export type RelayKind = 'broadcast' | 'delivery' | 'unmask';

/** A refusal the route turns into a JSON error with this status. */
export interface Refusal {
  refused: { status: 400 | 401 | 403 | 404 | 409 | 422 | 425 | 429; error: string; retryAfterSeconds?: number };
}
const refuse = (status: Refusal['refused']['status'], error: string, retryAfterSeconds?: number): Refusal => ({ refused: { status, error, retryAfterSeconds } });
const tooFast = (device: string, retryAfterSeconds: number) => refuse(429, `device '${device}' is sending too many requests; retry after ${retryAfterSeconds} s`, retryAfterSeconds);

export type ReceiveResult = { accepted: true; duplicate: boolean; stage: TaskStage; published?: string } | Refusal;
/** A relay, or where it is (the aggregator of the device's shard), or a refusal. */
export type RelayResult = { json: object } | { shard: string } | Refusal;

/** A failure that is not the protocol's: logged in full, and the round records only its message. */
const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class FederatedTask extends DurableObject<Env> {
  readonly #store: TaskStore;
  #server: ServerState | undefined;
  #relays: { broadcast?: Map<string, KeysBroadcast>; delivery?: Map<string, SharesDelivery>; unmask?: UnmaskRequest } = {};
  #queue: Promise<unknown> = Promise.resolve();
  /** Relay long polls waiting for the current stage to change. */
  #waiters = new Set<() => void>();
  /** Round and stage the waiters last saw. */
  #stageKey = '';
  readonly #messageLimit = new DeviceRateLimit({ capacity: 12, refillPerSecond: 0.5 });
  readonly #pollLimit = new DeviceRateLimit({ capacity: 30, refillPerSecond: 2 });
  #weightsCache: { version: number; bytes: Uint8Array } | undefined;
  /** Shard of each device in the current sharded round (built once per round from the stored assignment). */
  #shardIndex: { roundId: string; of: Map<string, number> } | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new TaskStore(ctx.storage.sql);
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
  #bytesOf(a: Float32Array | Uint32Array): Uint8Array {
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
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
  async create(settings: TaskSettings, weights: Float32Array, tokenDigest: string): Promise<{ created: boolean } | Refusal> {
    try {
      // The route checked already; the object holds to it too, since a bad setting would break every round.
      validateTaskSettings(settings);
    } catch (e) {
      if (e instanceof TaskSettingsError) return refuse(e.status, e.message);
      throw e;
    }
    return this.#exclusive(async () => {
      const existing = this.#store.settings();
      if (existing) return JSON.stringify(existing) === JSON.stringify(settings) ? { created: false } : refuse(409, `task '${settings.task}' already exists with other settings`);
      this.ctx.storage.transactionSync(() => {
        this.#store.setMeta('settings', settings);
        this.#store.setMeta('enrollment', tokenDigest);
        this.#store.writeBlob('weights', this.#bytesOf(weights));
        this.#startRound(settings, 1, 0);
      });
      return { created: true };
    });
  }

  #startRound(s: TaskSettings, round: number, weightsVersion: number): void {
    const pointer: RoundPointer = {
      round, roundId: `${s.task}/${round}/${toBase64(randomBytes(9))}`, graphSeed: toBase64(randomBytes(32)),
      stage: 'advertise-keys', opened: Date.now(), deadline: Date.now() + s.stageSeconds * 1000, weightsVersion,
    };
    this.#store.setPointer(pointer);
    this.#store.clearMessages();
    this.#store.deleteBlob('sum');
    this.#store.setRecord({ round, status: 'running', advertised: 0, shared: 0, submitted: 0, unmasked: 0, dropouts: 0, startedAt: new Date().toISOString() });
    this.#server = undefined;
    this.#relays = {};
    void this.ctx.storage.setAlarm(pointer.deadline);
  }

  /** The SecAgg+ server state of the current round: in memory, or rebuilt from storage after a restart. */
  async #state(s: TaskSettings, p: RoundPointer): Promise<ServerState> {
    if (this.#server && this.#server.config.roundId === p.roundId) return this.#server;
    const state = serverInit({ roundId: p.roundId, neighbours: s.secagg.neighbours, threshold: s.secagg.threshold, graphSeed: fromBase64(p.graphSeed), length: updateLength(s) }, this.#store.devices());
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
          console.warn(`task ${s.task} round ${p.round}: skipping a stored ${row.kind} message on replay: ${e.message}`);
        }
      }
    }
    if (state.stage === 'masked-input' || state.stage === 'unmask') {
      // Masked inputs are not replayed: the running sum and who is in it come back from storage.
      const sum = this.#store.readBlob('sum');
      if (sum) state.sum.set(new Uint32Array(sum.buffer, sum.byteOffset, sum.byteLength / 4));
      state.survivors = this.#store.contributors(p.round);
    }
    this.#server = state;
    return state;
  }

  /** Closes the state's current stage (also used when replaying). */
  async #close(state: ServerState, s: TaskSettings, round: number): Promise<void> {
    switch (state.stage) {
      case 'advertise-keys': this.#relays.broadcast = await serverCloseAdvertise(state); break;
      case 'share-keys': this.#relays.delivery = serverCloseShares(state); break;
      case 'masked-input': {
        // The survivor list must be the stored one when replaying (masked inputs are not in `messages`).
        state.survivors = this.#store.contributors(round);
        if (state.survivors.length < s.minDevices) throw new SecAggAbort(`${state.survivors.length} masked inputs arrived; the task needs ${s.minDevices}`);
        this.#relays.unmask = serverCloseMasked(state);
        break;
      }
      default: throw new SecAggError(`cannot close stage '${state.stage}'`);
    }
  }

  /**
   * Closes the current stage if everyone answered or its deadline passed; finishes the round after unmask.
   * Never throws for a round's sake: whatever goes wrong closing or finishing abandons the round with the reason
   * and starts the next, so the pointer always moves.
   */
  async #advance(force: boolean): Promise<string | undefined> {
    const s = this.#store.settings();
    if (!s) return;
    try {
      return await this.#advanceOrThrow(s, force);
    } catch (e) {
      const expected = e instanceof SecAggAbort || e instanceof SecAggError;
      if (!expected) console.error(`task ${s.task}: abandoning round ${this.#store.pointer().round} after an unexpected failure:`, e);
      // Memory may be half-way through a close: the next round starts from storage.
      this.#server = undefined;
      this.#abandon(s, this.#store.pointer(), expected ? describe(e) : `the round could not be completed: ${describe(e)}`);
      return;
    }
  }

  #abandon(s: TaskSettings, p: RoundPointer, reason: string): void {
    if (p.stage === 'finished') return;
    const rec = this.#store.record(p.round)!;
    const sharded = this.#sharded(p);
    this.ctx.storage.transactionSync(() => {
      this.#store.setRecord({ ...rec, status: 'abandoned', reason, dropouts: rec.advertised - rec.unmasked, endedAt: new Date().toISOString(), ...(sharded && { shards: mergeReports(sharded).shards }) });
      this.#next(s, p);
    });
    const role = this.#store.meta<ShardRole>('shard');
    // Not awaited: the coordinator may be the caller (an abandoned shard must never wait on it); a report that is
    // lost costs the shard nothing more — the coordinator counts it abandoned at its deadline.
    if (role) void this.#coordinator(s).shardReport(p.roundId, role.index, { status: 'abandoned', devices: s.devicesPerRound, reason }).catch((e) => console.error(`task ${s.task} round ${p.round} shard ${role.index}: the abandonment could not be reported:`, e));
  }

  async #advanceOrThrow(s: TaskSettings, force: boolean): Promise<string | undefined> {
    const p = this.#store.pointer();
    if (p.stage === 'finished') return;
    const sharded = this.#sharded(p);
    if (sharded && p.stage !== 'advertise-keys') return this.#advanceSharded(s, p, sharded, force);
    const state = await this.#state(s, p);
    const progress = {
      'advertise-keys': () => ({ answered: Object.keys(state.ads).length, expected: s.devicesPerRound }),
      'share-keys': () => ({ answered: Object.keys(state.shares).length, expected: state.roster.length }),
      'masked-input': () => ({ answered: state.survivors.length, expected: state.sharers.length }),
      unmask: () => ({ answered: Object.keys(state.unmasks).length, expected: state.survivors.length }),
    }[p.stage]();
    const action = nextAction({ stage: p.stage, ...progress }, { stageSeconds: s.stageSeconds, minStart: Math.max(s.minDevices, s.secagg.threshold + 1) }, { now: Date.now(), deadline: p.deadline, opened: p.opened, force, retryAt: p.retryAt });
    if (action.kind === 'wait') return;
    if (action.kind === 'keep-open') {
      // Too few devices have checked in yet (or no masked input arrived yet): keep the stage open rather than abandon the round.
      this.#store.setPointer({ ...p, deadline: action.deadline });
      await this.ctx.storage.setAlarm(action.deadline);
      return;
    }
    if (action.kind === 'finish') return await this.#finishRound(s, p, state);
    if (p.stage === 'advertise-keys' && s.shardSize !== undefined && s.devicesPerRound > s.shardSize) return await this.#startShards(s, p);
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
    const deadline = extendedDeadline({ now, deadline: p.deadline, opened: p.opened ?? now, stageSeconds: s.stageSeconds });
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
      if (this.#store.meta<ShardRole>('shard')) void this.ctx.storage.setAlarm(Date.now() + SHARD_RETENTION_MS);
      else void this.ctx.storage.deleteAlarm();
    } else this.#startRound(s, p.round + 1, p.weightsVersion);
  }

  /**
   * Unmasks the sum (robustly: bad shares are left out and their senders recorded); then the task's own object
   * completes the round (#completeRound) and a shard's aggregator reports its sum to the task (#reportShard).
   */
  async #finishRound(s: TaskSettings, p: RoundPointer, state: ServerState): Promise<string | undefined> {
    const result = await serverCloseUnmask(state);
    const unmasked = Object.keys(state.unmasks).length;
    const role = this.#store.meta<ShardRole>('shard');
    if (role) {
      return this.#reportShard(s, p, role, result.sum, {
        status: 'published', devices: s.devicesPerRound, shared: state.sharers.length, submitted: state.survivors.length, survivors: result.survivors.length,
        unmasked, badShares: result.badShares, epsilon: this.#store.epsilons(),
      });
    }
    return this.#completeRound(s, p, result.sum, result.survivors.length, { unmasked, ...(result.badShares.length ? { badShares: result.badShares } : {}) });
  }

  /**
   * A publish (or a shard's report) that failed: the round is tried again from storage after a pause, up to
   * MAX_PUBLISH_ATTEMPTS times; then this throws and the round is abandoned.
   */
  async #retryLater(s: TaskSettings, p: RoundPointer, what: string, e: unknown): Promise<undefined> {
    const failures = (p.publishFailures ?? 0) + 1;
    if (failures >= MAX_PUBLISH_ATTEMPTS) throw new Error(`${what} failed ${failures} times, last: ${describe(e)}`);
    console.error(`task ${s.task} round ${p.round}: ${what} failed (attempt ${failures} of ${MAX_PUBLISH_ATTEMPTS}), retrying:`, e);
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
  async #completeRound(s: TaskSettings, p: RoundPointer, sum: Uint32Array, survivors: number, outcome: Partial<RoundRecord>): Promise<string | undefined> {
    const rec = this.#store.record(p.round)!;
    const mean = await this.#meanUpdate(s, p, sum, survivors);
    const weights = this.#store.floats('weights')!.slice();
    const opt: ServerOptimizerState = { m: this.#store.floats('opt-m')?.slice(), v: this.#store.floats('opt-v')?.slice() };
    const nextOpt = serverStep(s.serverOptimizer, weights, mean, opt);
    if (!weights.every(Number.isFinite)) throw new SecAggAbort('the server optimizer step gave non-finite weights; nothing was published');
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
      this.#store.writeBlob('weights', this.#bytesOf(weights));
      if (nextOpt.m) this.#store.writeBlob('opt-m', this.#bytesOf(nextOpt.m));
      if (nextOpt.v) this.#store.writeBlob('opt-v', this.#bytesOf(nextOpt.v));
      this.#store.setRecord({
        ...rec, ...outcome, status: 'published', dropouts: rec.advertised - survivors, updateNorm: l2Norm(mean), version,
        epsilon: this.#store.maxEpsilon(), clientEpsilon: epsilon, endedAt: new Date().toISOString(),
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


  // ---- sharded rounds (coordinator: the task's object; aggregator: one shard's object) ----------------------

  /** The current round's shard assignment, when the round is sharded. */
  #sharded(p: RoundPointer): ShardedRound | undefined {
    const r = this.#store.meta<ShardedRound>('shards');
    return r?.roundId === p.roundId ? r : undefined;
  }
  #shardOf(r: ShardedRound, device: string): number | undefined {
    if (this.#shardIndex?.roundId !== r.roundId) this.#shardIndex = { roundId: r.roundId, of: new Map(r.members.flatMap((m, j) => m.map((d) => [d, j] as const))) };
    return this.#shardIndex.of.get(device);
  }
  #aggregator(roundId: string, index: number): DurableObjectStub<FederatedTask> {
    return this.env.SHARD_AGGREGATOR.getByName(aggregatorName(roundId, index));
  }
  #coordinator(s: TaskSettings): DurableObjectStub<FederatedTask> {
    return this.env.FEDERATED_TASK.getByName(s.task);
  }

  /**
   * Check-in of a sharded round closes: a fresh seed (drawn now, after every device chose its id and checked in)
   * assigns the devices to shards (secagg/shards.ts); each shard's aggregator gets its devices' keys and
   * advertisements and runs the rest of the round. Stored before the aggregators start, so a restart reuses the
   * same assignment (starting an aggregator twice is a no-op); the pointer moves only once they have started, so a
   * device sent to its aggregator finds it running.
   */
  async #startShards(s: TaskSettings, p: RoundPointer): Promise<string | undefined> {
    let plan = this.#store.meta<ShardedRound>('shards');
    if (plan?.roundId !== p.roundId) {
      const seed = randomBytes(32);
      // Shards for the devices that did check in (not devicesPerRound): fewer devices, fewer and fuller shards.
      const checkedIn = this.#store.senders(p.round, 'advertise-keys');
      const { shards, overflow } = await assignShards(checkedIn, seed, shardPlan(checkedIn.length, s.shardSize!));
      const minStart = Math.max(s.minDevices, s.secagg.threshold + 1);
      const reports = shards.map((m): ShardReport | null => (m.length >= minStart ? null : { status: 'abandoned', devices: m.length, reason: `${m.length} devices landed in this shard; a shard needs ${minStart}` }));
      plan = { roundId: p.roundId, seed: toBase64(seed), members: shards, overflow, reports };
      this.#store.setMeta('shards', plan);
    }
    const started = plan;
    const reports = await Promise.all(started.members.map(async (members, index) => {
      if (started.reports[index]) return started.reports[index];
      try {
        await this.#aggregator(p.roundId, index).startShard({
          settings: s, round: p.round, roundId: p.roundId, graphSeed: p.graphSeed, weightsVersion: p.weightsVersion, index,
          devices: members.map((d) => [d, this.#store.identityKey(d)!]), ads: members.map((d) => this.#store.message(p.round, 'advertise-keys', d)!),
        });
        return null;
      } catch (e) {
        console.error(`task ${s.task} round ${p.round}: shard ${index}'s aggregator did not start:`, e);
        return { status: 'abandoned', devices: members.length, reason: `its aggregator did not start: ${describe(e)}` } satisfies ShardReport;
      }
    }));
    // A shard may have reported (abandoned) while the others started: keep what is stored.
    const current = this.#store.meta<ShardedRound>('shards')!;
    const now = Date.now();
    const deadline = shardedDeadline(now, s.stageSeconds);
    this.ctx.storage.transactionSync(() => {
      this.#store.setMeta('shards', { ...current, reports: current.reports.map((r, j) => r ?? reports[j] ?? null) });
      this.#store.setPointer({ ...p, stage: 'share-keys', opened: now, deadline });
    });
    this.#server = undefined;
    this.#relays = {};
    await this.ctx.storage.setAlarm(deadline);
    return this.#advanceOrThrow(s, false);
  }

  /** A sharded round finishes when every shard has reported, or at its deadline with the shards that did. */
  async #advanceSharded(s: TaskSettings, p: RoundPointer, r: ShardedRound, force: boolean): Promise<string | undefined> {
    const due = force || Date.now() >= p.deadline || r.reports.every((x) => x !== null);
    if (!due || (p.retryAt !== undefined && Date.now() < p.retryAt && !force)) return;
    const merged = mergeReports(r);
    if (merged.failure) throw new SecAggAbort(merged.failure);
    const sum = this.#store.readBlob('sum')!;
    const { failure: _f, survivors, ...outcome } = merged;
    return this.#completeRound(s, p, new Uint32Array(sum.buffer, sum.byteOffset, sum.byteLength / 4), survivors, { ...outcome, badShares: outcome.badShares.length ? outcome.badShares : undefined });
  }

  /** An aggregator's round ended: it hands its unmasked sum to the coordinator, then its own round is over. */
  async #reportShard(s: TaskSettings, p: RoundPointer, role: ShardRole, sum: Uint32Array, report: ShardReport & { status: 'published' }): Promise<string | undefined> {
    let published: string | undefined;
    try {
      ({ published } = await this.#coordinator(s).shardReport(p.roundId, role.index, report, sum));
    } catch (e) {
      return this.#retryLater(s, p, 'reporting the shard\'s sum', e);
    }
    const rec = this.#store.record(p.round)!;
    this.ctx.storage.transactionSync(() => {
      this.#store.setRecord({ ...rec, status: 'published', unmasked: report.unmasked, dropouts: rec.advertised - report.survivors, endedAt: new Date().toISOString(), ...(report.badShares.length ? { badShares: report.badShares } : {}) });
      this.#next(s, p);
    });
    return published;
  }

  /**
   * (Aggregator) Takes one shard of a round: its devices, their keys and advertisements. Idempotent, and it never
   * waits for this object's queue — the coordinator calls it while holding its own, and a shard's report waits on
   * the coordinator's (no cycle). Check-in closes at once (everyone it waits for has answered) on the next turn.
   */
  startShard(start: ShardStart): { started: boolean } {
    if (this.#store.settings()) return { started: false };
    const s: TaskSettings = { ...start.settings, devicesPerRound: start.devices.length, rounds: start.round };
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.#store.setMeta('settings', s);
      this.#store.setMeta('shard', { index: start.index } satisfies ShardRole);
      for (const [d, key] of start.devices) this.#store.addDevice(d, key);
      this.#store.setPointer({ round: start.round, roundId: start.roundId, graphSeed: start.graphSeed, stage: 'advertise-keys', opened: now, deadline: now, weightsVersion: start.weightsVersion });
      this.#store.setRecord({ round: start.round, status: 'running', advertised: start.ads.length, shared: 0, submitted: 0, unmasked: 0, dropouts: 0, startedAt: new Date().toISOString() });
      for (let i = 0; i < start.ads.length; i++) this.#store.addMessage(start.round, 'advertise-keys', start.devices[i]![0], start.ads[i]!);
    });
    void this.ctx.storage.setAlarm(now);
    return { started: true };
  }

  /** (Coordinator) A shard's outcome; its sum joins the round's total once. Returns the version the round published. */
  async shardReport(roundId: string, index: number, report: ShardReport, sum?: Uint32Array): Promise<{ accepted: boolean; published?: string }> {
    const s = this.#store.settings();
    if (!s) return { accepted: false };
    return this.#exclusive(async () => {
      const p = this.#store.pointer();
      const r = this.#sharded(p);
      if (!r || p.roundId !== roundId || p.stage === 'advertise-keys' || p.stage === 'finished' || !(index >= 0 && index < r.members.length) || r.reports[index]) return { accepted: false };
      const length = updateLength(s);
      const usable = report.status === 'abandoned' || (sum instanceof Uint32Array && sum.length === length && report.survivors >= s.minDevices);
      const stored: ShardReport = usable ? report : { status: 'abandoned', devices: report.devices, reason: `its report is not a sum of ${length} words over at least ${s.minDevices} devices` };
      this.ctx.storage.transactionSync(() => {
        if (stored.status === 'published') {
          const total = this.#store.readBlob('sum');
          const acc = total ? new Uint32Array(total.buffer, total.byteOffset, length) : new Uint32Array(length);
          addMask(acc, sum!, 1);
          this.#store.writeBlob('sum', this.#bytesOf(acc));
          for (const [d, e] of stored.epsilon) if (r.members[index]!.includes(d)) this.#store.reportEpsilon(d, e);
        }
        this.#store.setMeta('shards', { ...r, reports: r.reports.map((x, j) => (j === index ? stored : x)) });
      });
      return { accepted: true, published: await this.#advance(false) };
    });
  }

  /** (Coordinator) The aggregator that takes `device`'s messages in round `roundId`, when that round is sharded. */
  shardFor(roundId: string, device: string): { shard?: string } {
    const s = this.#store.settings();
    if (!s) return {};
    const p = this.#store.pointer();
    const r = this.#sharded(p);
    if (!r || r.roundId !== roundId || p.stage === 'advertise-keys') return {};
    const index = this.#shardOf(r, device);
    return index === undefined ? {} : { shard: aggregatorName(roundId, index) };
  }

  override async alarm(): Promise<void> {
    // A shard's aggregator whose round is over deletes itself once its retention is over (#next set that alarm).
    if (this.#store.meta<ShardRole>('shard') && this.#store.pointer()?.stage === 'finished') return this.ctx.storage.deleteAll();
    await this.#exclusive(() => this.#advance(false));
  }

  // ---- device-facing ---------------------------------------------------------------------------------------

  async enroll(tokenDigest: string, device: string, identityKey: Uint8Array): Promise<{ enrolled: boolean } | Refusal> {
    if (!this.#store.settings()) return this.#noTask();
    const expected = new TextEncoder().encode(this.#store.meta<string>('enrollment')!), given = new TextEncoder().encode(tokenDigest);
    if (expected.byteLength !== given.byteLength || !crypto.subtle.timingSafeEqual(expected, given)) return refuse(403, 'enrollment token is not valid for this task');
    const known = this.#store.identityKey(device);
    if (known) return equal(known, identityKey) ? { enrolled: false } : refuse(409, `device '${device}' is enrolled with another identity key`);
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
      task: s.task, round: p.round, roundId: p.roundId, stage: p.stage, open: p.stage === 'advertise-keys' && advertised < s.devicesPerRound,
      graphSeed: p.graphSeed, neighbours: s.secagg.neighbours, threshold: s.secagg.threshold, minDevices: s.minDevices, length: updateLength(s),
      fixedPoint: fixedPointOf(s), distributedDp: ddgaussFor(s), weightsVersion: p.weightsVersion, training: s.training, privacy: s.privacy, spec: s.spec,
      ...(s.base && { base: s.base }), deadline: new Date(p.deadline).toISOString(),
    };
  }

  weights(): { version: number; bytes: Uint8Array } | Refusal {
    if (!this.#store.settings()) return this.#noTask();
    const version = this.#store.pointer().weightsVersion;
    // Every device of a round downloads them at its start: read once per version, not once per device.
    if (this.#weightsCache?.version !== version) this.#weightsCache = { version, bytes: this.#store.readBlob('weights')! };
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
    return this.#accept(s, m, { payloadDigest: await sha256(this.#bytesOf(masked)), chunks: () => [masked] }, epsilonSpent);
  }

  /**
   * A masked input streamed in: `payload` is its 4·length bytes of words, kept in scratch storage while it arrives
   * (masked-input-stream.ts) and added to the running sum chunk by chunk once the sender is authenticated. Nothing
   * reaches the sum before the whole input arrived and verified.
   */
  async receiveMasked(head: { roundId: string; from: string; signature: Uint8Array }, payload: ReadableStream<Uint8Array>, epsilonSpent?: number): Promise<ReceiveResult> {
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
  #accept(s: TaskSettings, m: DeviceMessage, body: { bytes: Uint8Array } | { payloadDigest: Uint8Array; chunks: () => Iterable<Uint32Array> }, epsilonSpent?: number): Promise<ReceiveResult> {
    return this.#exclusive(async (): Promise<ReceiveResult> => {
      // Deadlines are checked first: a late message meets the next stage.
      await this.#advance(false);
      const p = this.#store.pointer();
      if (p.stage === 'finished') return refuse(422, 'the task has finished');
      // Past check-in, a sharded round's messages go to the sender's aggregator (the route asks shardFor first).
      if (this.#sharded(p) && p.stage !== 'advertise-keys') return refuse(422, m.stage === 'advertise-keys' ? `check-in for round ${p.round} has closed; check in for the next round` : `${m.from} is not in a shard of round ${p.round}`);
      const state = await this.#state(s, p);
      const current = m.roundId === p.roundId;
      const digest = 'payloadDigest' in body ? toBase64(await sha256(concat(m.signature, body.payloadDigest))) : '';
      const prior = !current ? undefined : m.stage === 'masked-input' ? this.#store.contribution(p.round, m.from) : this.#store.message(p.round, m.stage, m.from);
      const same = prior !== undefined && (typeof prior === 'string' ? prior === digest : 'bytes' in body && equal(prior, body.bytes));
      if (same) return { accepted: true as const, duplicate: true, stage: p.stage };
      try {
        await serverAuthenticate(state, m, 'payloadDigest' in body ? body.payloadDigest : undefined);
      } catch (e) {
        if (!(e instanceof SecAggError)) throw e;
        return refuse(/not enrolled|identity key|bad signature|not a participant/.test(e.message) ? 403 : 422, e.message);
      }
      if (prior !== undefined) return refuse(409, `${m.from} already sent a different ${m.stage === 'masked-input' ? 'masked input' : `${m.stage} message`} this round`);
      // Only now is the sender known to be who it says: its tokens, not a forger's.
      const limited = this.#messageLimit.take(m.from);
      if (!limited.ok) return tooFast(m.from, limited.retryAfterSeconds);
      if (m.stage === 'advertise-keys' && p.stage === 'advertise-keys' && Object.keys(state.ads).length >= s.devicesPerRound) return refuse(422, 'this round is full; check in for the next one');
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
          this.#store.writeBlob('sum', this.#bytesOf(state.sum));
          this.#store.addContribution(p.round, m.from, digest);
        } else {
          this.#store.addMessage(p.round, m.stage, m.from, (body as { bytes: Uint8Array }).bytes);
        }
        const field = ({ 'advertise-keys': 'advertised', 'share-keys': 'shared', 'masked-input': 'submitted', unmask: 'unmasked' } as const)[m.stage];
        this.#store.setRecord({ ...rec, [field]: rec[field] + 1 });
        if (epsilonSpent !== undefined && Number.isFinite(epsilonSpent)) this.#store.reportEpsilon(m.from, epsilonSpent);
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
  async relay(kind: RelayKind, round: number, device: string, signature: Uint8Array | undefined, waitSeconds = 0): Promise<RelayResult> {
    const s = this.#store.settings();
    if (!s) return this.#noTask();
    if (!signature) return refuse(401, 'relays need the device\'s signature: send Fedge-Device-Signature');
    const key = this.#store.identityKey(device);
    if (!key || !(await verify(key, relaySigningBytes(s.task, round, kind, device), signature))) return refuse(403, `the signature is not ${device}'s (or ${device} is not enrolled)`);
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
      const sharded = this.#sharded(p);
      if (sharded && p.stage !== 'advertise-keys') {
        const index = this.#shardOf(sharded, device);
        const report = index === undefined ? undefined : sharded.reports[index];
        if (report?.status === 'abandoned') return refuse(422, `${device}'s shard in round ${round} was abandoned: ${report.reason}`);
        if (index !== undefined) return { shard: aggregatorName(p.roundId, index) };
        return refuse(422, sharded.overflow.includes(device) ? `${device}'s shard was full in round ${round}; check in for the next round` : `${device} is not in round ${round}`);
      }
      await this.#state(s, p);
      const r = this.#relays;
      if (kind === 'broadcast') return r.broadcast ? (r.broadcast.has(device) ? { json: relayToJson.broadcast(r.broadcast.get(device)!) } : refuse(422, `${device} is not in round ${round}`)) : refuse(425, 'advertise-keys is still open');
      if (kind === 'delivery') return r.delivery ? (r.delivery.has(device) ? { json: relayToJson.delivery(r.delivery.get(device)!) } : refuse(422, `${device} did not share keys in round ${round}`)) : refuse(425, 'share-keys is still open');
      return r.unmask ? (r.unmask.survivors.includes(device) ? { json: r.unmask } : refuse(422, `${device}'s masked input is not in round ${round}`)) : refuse(425, 'masked-input is still open');
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
    const history = this.#store.history();
    return {
      task: s.task, model: s.model, alias: s.alias, status: p.stage === 'finished' ? 'finished' : 'running', round: p.round, stage: p.stage,
      rounds: s.rounds, devicesPerRound: s.devicesPerRound, enrolledDevices: this.#store.deviceCount(),
      ...(s.base && { base: { model: s.base.model, version: s.base.version, trainable: s.base.trainable, layers: s.base.head.layers.flatMap((l) => l.nodes) } }),
      history, publishedVersions: history.filter((h) => h.version).map((h) => h.version!), privacy: s.privacy ? { ...s.privacy, maxSpent: this.#store.maxEpsilon() } : undefined,
      distributedDp: s.distributedDp && { ...s.distributedDp, epsilon: history.findLast((h) => h.clientEpsilon !== undefined)?.clientEpsilon ?? 0 },
    };
  }

  /** The task's line in GET /v1/tasks. */
  summary(): TaskSummary | Refusal {
    const s = this.#store.settings();
    if (!s || this.#store.meta<ShardRole>('shard')) return this.#noTask();
    const p = this.#store.pointer();
    return {
      task: s.task, model: s.model, status: p.stage === 'finished' ? 'finished' : 'running', round: p.round, stage: p.stage, rounds: s.rounds,
      devicesPerRound: s.devicesPerRound, enrolledDevices: this.#store.deviceCount(), published: this.#store.publishedRounds(),
    };
  }

  /** Closes the current stage now (operators and tests; deadlines do the same). */
  async closeStage(): Promise<{ stage: TaskStage; published?: string } | Refusal> {
    if (!this.#store.settings()) return this.#noTask();
    return this.#exclusive(async () => ({ published: await this.#advance(true), stage: this.#store.pointer().stage }));
  }
}
