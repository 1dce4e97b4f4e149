/**
 * FederatedTask: the Durable Object (SQLite) that runs one federated task — rounds of SecAgg+ (federated/secagg)
 * over the devices that check in, a server optimizer step on the unmasked mean update, and a new quantized model
 * version published to the catalog after every round.
 *
 * Storage (all writes for one accepted message happen in one synchronous transaction, so a restart sees either
 * the message and its effects or neither):
 *   meta          settings and the round pointer (round, stage, deadline, weights version)
 *   blobs         the global weights, the optimizer state and the round's running masked sum, each in ≤ 1 MiB rows
 *   devices       enrolled devices and their Ed25519 identity keys
 *   messages      the round's advertise/share/unmask messages and stage closes, in order — replayed after a restart
 *   contributions who is in the running sum (a masked input is added exactly once, a byte-identical retry is a no-op)
 *   rounds        one record per round for the status page
 * Masked inputs are not stored: each is added to the running sum (O(d) memory and storage however many devices).
 * Stage deadlines are alarms; a stage also closes as soon as everyone it waits for has answered.
 */
import { DurableObject } from 'cloudflare:workers';
import { exportOnnx } from '../../federated/model/onnx-export.ts';
import { unflattenWeights } from '../../federated/model/flat-weights.ts';
import { QuantizeError, quantizeModel } from '../../federated/model/quantize.ts';
import { l2Norm, serverStep, type ServerOptimizerState } from '../../federated/aggregation/server-optimizer.ts';
import { type RoundInfo, type RoundRecord, type TaskSettings, type TaskStage, type TaskStatus, clientEpsilon, ddgaussFor, relayToJson, updateLength } from '../../federated/aggregation/task-protocol.ts';
import { ddgaussDecode } from '../../federated/dp/distributed-dp.ts';
import { equal, fromBase64, toBase64 } from '../../federated/secagg/bytes.ts';
import { decodeSum, fixedPointFor, type FixedPoint } from '../../federated/secagg/fixed-point.ts';
import { type DeviceMessage, type KeysBroadcast, SecAggAbort, SecAggError, type SharesDelivery, type UnmaskRequest } from '../../federated/secagg/messages.ts';
import { randomBytes, sha256 } from '../../federated/secagg/primitives.ts';
import { sha256Hex } from '../../federated/model/digest.ts';
import { type ServerState, serverCloseAdvertise, serverCloseMasked, serverCloseShares, serverFinish, serverInit, serverReceive } from '../../federated/secagg/server.ts';
import { decodeMessage, encodeMessage } from '../../federated/secagg/wire.ts';
import { loadModel } from '../inference/model-loader.ts';
import { putBlob } from '../registry/blob-store.ts';
import { DeviceRateLimit } from './device-rate-limit.ts';

const CHUNK_BYTES = 1 << 20; // Durable Object SQLite rows hold ≤ 2 MB
/** Longest a relay request is held open waiting for its stage to close (long poll). */
export const MAX_RELAY_WAIT_SECONDS = 25;

interface RoundPointer {
  round: number;
  roundId: string;
  graphSeed: string;
  stage: TaskStage;
  /** When the stage opened, and when it closes unless everyone answers first (see #extendDeadline). */
  opened: number;
  deadline: number;
  weightsVersion: number;
}

/** A stage that keeps receiving answers stays open at most this many stageSeconds. */
const MAX_STAGE_FACTOR = 6;

/** A refusal the route turns into a JSON error with this status. */
export interface Refusal {
  refused: { status: 400 | 403 | 404 | 409 | 422 | 425 | 429; error: string; retryAfterSeconds?: number };
}
const refuse = (status: Refusal['refused']['status'], error: string, retryAfterSeconds?: number): Refusal => ({ refused: { status, error, retryAfterSeconds } });
const tooFast = (device: string, retryAfterSeconds: number) => refuse(429, `device '${device}' is sending too many requests; retry after ${retryAfterSeconds} s`, retryAfterSeconds);

export type ReceiveResult = { accepted: true; duplicate: boolean; stage: TaskStage; published?: string } | Refusal;

export class FederatedTask extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  #server: ServerState | undefined;
  #relays: { broadcast?: Map<string, KeysBroadcast>; delivery?: Map<string, SharesDelivery>; unmask?: UnmaskRequest } = {};
  #queue: Promise<unknown> = Promise.resolve();
  /** Relay long polls waiting for the current stage to change. */
  #waiters = new Set<() => void>();
  /** Round and stage the waiters last saw. */
  #stageKey = '';
  readonly #messageLimit = new DeviceRateLimit({ capacity: 12, refillPerSecond: 0.5 });
  readonly #pollLimit = new DeviceRateLimit({ capacity: 30, refillPerSecond: 2 });

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS blobs (name TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (name, idx));
      CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, identity_key BLOB NOT NULL, enrolled_at TEXT NOT NULL, epsilon REAL NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, kind TEXT NOT NULL, device TEXT, bytes BLOB);
      CREATE TABLE IF NOT EXISTS contributions (round INTEGER NOT NULL, device TEXT NOT NULL, digest TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (round, device));
      CREATE TABLE IF NOT EXISTS rounds (round INTEGER PRIMARY KEY, record TEXT NOT NULL);
    `);
  }

  // ---- storage helpers -------------------------------------------------------------------------------------

  #meta<T>(key: string): T | undefined {
    const row = this.#sql.exec('SELECT value FROM meta WHERE key = ?', key).toArray()[0];
    return row ? (JSON.parse(String(row.value)) as T) : undefined;
  }
  #setMeta(key: string, value: unknown): void {
    this.#sql.exec('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, JSON.stringify(value));
    // Long polls wait for a stage to close: wake them when the round or stage moves, not on every deadline
    // extension (one per message — with 200 devices waiting, that was 200 re-checks per message).
    if (key === 'pointer') {
      const { round, stage } = value as RoundPointer;
      if (this.#stageKey !== `${round}/${stage}`) {
        this.#stageKey = `${round}/${stage}`;
        queueMicrotask(() => this.#wake());
      }
    }
  }
  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }
  #writeBlob(name: string, bytes: Uint8Array): void {
    this.#sql.exec('DELETE FROM blobs WHERE name = ?', name);
    for (let i = 0, idx = 0; i < bytes.byteLength || idx === 0; i += CHUNK_BYTES, idx++) this.#sql.exec('INSERT INTO blobs (name, idx, data) VALUES (?, ?, ?)', name, idx, bytes.subarray(i, i + CHUNK_BYTES));
  }
  #readBlob(name: string): Uint8Array | undefined {
    const rows = this.#sql.exec('SELECT data FROM blobs WHERE name = ? ORDER BY idx', name).toArray();
    if (!rows.length) return undefined;
    const parts = rows.map((r) => new Uint8Array(r.data as ArrayBuffer));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.byteLength));
    return out;
  }
  #floats(name: string): Float32Array | undefined {
    const b = this.#readBlob(name);
    return b ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) : undefined;
  }
  #bytesOf(a: Float32Array | Uint32Array): Uint8Array {
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  }
  #settings(): TaskSettings | undefined {
    return this.#meta<TaskSettings>('settings');
  }
  #pointer(): RoundPointer {
    return this.#meta<RoundPointer>('pointer')!;
  }
  #fixedPoint(s: TaskSettings): FixedPoint {
    return fixedPointFor({ maxDevices: s.devicesPerRound, clip: s.update.clip, maxExamples: s.update.maxExamples });
  }
  #record(round: number): RoundRecord | undefined {
    const row = this.#sql.exec('SELECT record FROM rounds WHERE round = ?', round).toArray()[0];
    return row ? (JSON.parse(String(row.record)) as RoundRecord) : undefined;
  }
  #setRecord(r: RoundRecord): void {
    this.#sql.exec('INSERT INTO rounds (round, record) VALUES (?, ?) ON CONFLICT (round) DO UPDATE SET record = excluded.record', r.round, JSON.stringify(r));
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
    return this.#exclusive(async () => {
      const existing = this.#settings();
      if (existing) return JSON.stringify(existing) === JSON.stringify(settings) ? { created: false } : refuse(409, `task '${settings.task}' already exists with other settings`);
      this.ctx.storage.transactionSync(() => {
        this.#setMeta('settings', settings);
        this.#setMeta('enrollment', tokenDigest);
        this.#writeBlob('weights', this.#bytesOf(weights));
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
    this.#setMeta('pointer', pointer);
    this.#sql.exec('DELETE FROM messages');
    this.#sql.exec('DELETE FROM blobs WHERE name = ?', 'sum');
    this.#setRecord({ round, status: 'running', advertised: 0, shared: 0, submitted: 0, unmasked: 0, dropouts: 0, startedAt: new Date().toISOString() });
    this.#server = undefined;
    this.#relays = {};
    void this.ctx.storage.setAlarm(pointer.deadline);
  }

  /** The SecAgg+ server state of the current round: in memory, or rebuilt from storage after a restart. */
  async #state(s: TaskSettings, p: RoundPointer): Promise<ServerState> {
    if (this.#server && this.#server.config.roundId === p.roundId) return this.#server;
    const enrolled = Object.fromEntries(this.#sql.exec('SELECT id, identity_key FROM devices').toArray().map((r) => [String(r.id), new Uint8Array(r.identity_key as ArrayBuffer)]));
    const state = serverInit({ roundId: p.roundId, neighbours: s.secagg.neighbours, threshold: s.secagg.threshold, graphSeed: fromBase64(p.graphSeed), length: updateLength(s) }, enrolled);
    this.#relays = {};
    for (const row of this.#sql.exec('SELECT kind, bytes FROM messages WHERE round = ? ORDER BY seq', p.round).toArray()) {
      if (row.kind === 'close') await this.#close(state, s, p.round);
      else await serverReceive(state, decodeMessage(new Uint8Array(row.bytes as ArrayBuffer)));
    }
    if (state.stage === 'masked-input' || state.stage === 'unmask') {
      // Masked inputs are not replayed: the running sum and who is in it come back from storage.
      const sum = this.#readBlob('sum');
      if (sum) state.sum.set(new Uint32Array(sum.buffer, sum.byteOffset, sum.byteLength / 4));
      state.survivors = this.#sql.exec('SELECT device FROM contributions WHERE round = ? ORDER BY seq', p.round).toArray().map((r) => String(r.device));
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
        state.survivors = this.#sql.exec('SELECT device FROM contributions WHERE round = ? ORDER BY seq', round).toArray().map((r) => String(r.device));
        if (state.survivors.length < s.minDevices) throw new SecAggAbort(`${state.survivors.length} masked inputs arrived; the task needs ${s.minDevices}`);
        this.#relays.unmask = serverCloseMasked(state);
        break;
      }
      default: throw new SecAggError(`cannot close stage '${state.stage}'`);
    }
  }

  /** Closes the current stage if everyone answered or its deadline passed; finishes the round after unmask. */
  async #advance(force: boolean): Promise<string | undefined> {
    const s = this.#settings();
    if (!s) return;
    const p = this.#pointer();
    if (p.stage === 'finished') return;
    const state = await this.#state(s, p);
    const due = force || Date.now() >= p.deadline;
    const rec = this.#record(p.round)!;
    const waiting = {
      'advertise-keys': () => Object.keys(state.ads).length < s.devicesPerRound,
      'share-keys': () => Object.keys(state.shares).length < state.roster.length,
      'masked-input': () => state.survivors.length < state.sharers.length,
      unmask: () => Object.keys(state.unmasks).length < state.survivors.length,
    }[p.stage as Exclude<TaskStage, 'finished'>];
    if (waiting() && !due) return;
    if (p.stage === 'advertise-keys' && Object.keys(state.ads).length < Math.max(s.minDevices, s.secagg.threshold + 1)) {
      // Too few devices have checked in yet: keep the round open rather than abandon it.
      p.deadline = Date.now() + s.stageSeconds * 1000;
      this.#setMeta('pointer', p);
      await this.ctx.storage.setAlarm(p.deadline);
      return;
    }
    try {
      if (p.stage === 'unmask') return await this.#finishRound(s, p, state, rec);
      await this.#close(state, s, p.round);
    } catch (e) {
      if (!(e instanceof SecAggAbort || e instanceof SecAggError)) throw e;
      this.ctx.storage.transactionSync(() => {
        this.#setRecord({ ...rec, status: 'abandoned', reason: e.message, dropouts: rec.advertised - rec.unmasked, endedAt: new Date().toISOString() });
        this.#next(s, p);
      });
      return;
    }
    const next = state.stage as TaskStage;
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec('INSERT INTO messages (round, kind) VALUES (?, ?)', p.round, 'close');
      this.#setMeta('pointer', { ...p, stage: next, opened: Date.now(), deadline: Date.now() + s.stageSeconds * 1000 });
    });
    await this.ctx.storage.setAlarm(Date.now() + s.stageSeconds * 1000);
    // A stage whose devices all answered already (e.g. everyone dropped) closes at once.
    return this.#advance(false);
  }

  /**
   * A stage that is still receiving answers is not cut off: each answer gives the stage stageSeconds more, up to
   * MAX_STAGE_FACTOR × stageSeconds after it opened. Devices that are slow but coming (a loaded phone, long local
   * training before advertise-keys) make the round; devices that are gone cost one stageSeconds after the last answer.
   */
  async #extendDeadline(s: TaskSettings, p: RoundPointer): Promise<void> {
    const now = Date.now();
    const deadline = Math.min(Math.max(p.deadline, now + s.stageSeconds * 1000), (p.opened ?? now) + MAX_STAGE_FACTOR * s.stageSeconds * 1000);
    if (deadline <= p.deadline) return;
    this.#setMeta('pointer', { ...p, deadline });
    await this.ctx.storage.setAlarm(deadline);
  }

  #next(s: TaskSettings, p: RoundPointer): void {
    if (p.round >= s.rounds) {
      this.#setMeta('pointer', { ...p, stage: 'finished' });
      this.#server = undefined;
      void this.ctx.storage.deleteAlarm();
    } else this.#startRound(s, p.round + 1, p.weightsVersion);
  }

  async #finishRound(s: TaskSettings, p: RoundPointer, state: ServerState, rec: RoundRecord): Promise<string> {
    const result = await serverFinish(state);
    const mean = await this.#meanUpdate(s, p, result.sum, result.survivors.length);
    const weights = this.#floats('weights')!.slice();
    const opt: ServerOptimizerState = { m: this.#floats('opt-m')?.slice(), v: this.#floats('opt-v')?.slice() };
    const nextOpt = serverStep(s.serverOptimizer, weights, mean, opt);
    const version = `r${p.round}`;
    // Publish before committing the round: a failure here leaves the round to be retried by the next alarm.
    const fp32 = exportOnnx(s.spec, unflattenWeights(s.spec, weights), { metadata: { task: s.task, round: String(p.round) } });
    let onnx = fp32;
    try {
      onnx = quantizeModel(fp32).bytes;
    } catch (e) {
      if (!(e instanceof QuantizeError)) throw e; // a model too small to gain from int8 is published in fp32
    }
    const { session, inputs, outputs } = await loadModel(onnx);
    await session.release();
    const sha256 = await sha256Hex(onnx);
    await putBlob(this.env.MODEL_BLOBS, sha256, onnx);
    const catalog = this.env.MODEL_CATALOG.getByName('global');
    const put = await catalog.putVersion({ model: s.model, version, sha256, bytes: onnx.byteLength, inputs, outputs });
    if (put.status === 'conflict') throw new Error(`model '${s.model}' version '${version}' already exists with other bytes: the task cannot publish`);
    await catalog.setAlias(s.model, s.alias, version);
    const epsilon = Number(this.#sql.exec('SELECT MAX(epsilon) AS e FROM devices').one().e ?? 0);
    const enrolled = Number(this.#sql.exec('SELECT COUNT(*) AS n FROM devices').one().n);
    const released = Number(this.#sql.exec("SELECT COUNT(*) AS n FROM rounds WHERE json_extract(record, '$.status') = 'published'").one().n) + 1;
    this.ctx.storage.transactionSync(() => {
      this.#writeBlob('weights', this.#bytesOf(weights));
      if (nextOpt.m) this.#writeBlob('opt-m', this.#bytesOf(nextOpt.m));
      if (nextOpt.v) this.#writeBlob('opt-v', this.#bytesOf(nextOpt.v));
      this.#setRecord({ ...rec, status: 'published', unmasked: Object.keys(state.unmasks).length, dropouts: rec.advertised - result.survivors.length, updateNorm: l2Norm(mean), version, epsilon, clientEpsilon: clientEpsilon(s, released, enrolled), endedAt: new Date().toISOString() });
      const moved = { ...p, weightsVersion: p.weightsVersion + 1 };
      this.#setMeta('pointer', moved);
      this.#next(s, moved);
    });
    return version;
  }

  /**
   * The survivors' mean update from the unmasked sum. Fixed point: Σ w·Δ / Σ w (FedAvg weighting). DDGauss: the
   * noisy sum of clipped updates over the number of survivors — uniform weights, as DP-FedAvg needs (McMahan et
   * al. 2018, §2), since an example count would be one more thing to protect.
   */
  async #meanUpdate(s: TaskSettings, p: RoundPointer, sum: Uint32Array, survivors: number): Promise<Float32Array> {
    const dd = ddgaussFor(s);
    if (dd) {
      const noisySum = await ddgaussDecode(sum, dd, fromBase64(p.graphSeed));
      return Float32Array.from(noisySum, (v) => v / survivors);
    }
    const { mean, totalWeight } = decodeSum(sum, this.#fixedPoint(s));
    if (!(totalWeight > 0)) throw new SecAggAbort('the survivors trained on no examples');
    return mean;
  }

  override async alarm(): Promise<void> {
    await this.#exclusive(() => this.#advance(false));
  }

  // ---- device-facing ---------------------------------------------------------------------------------------

  async enroll(tokenDigest: string, device: string, identityKey: Uint8Array): Promise<{ enrolled: boolean } | Refusal> {
    if (!this.#settings()) return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
    const expected = new TextEncoder().encode(this.#meta<string>('enrollment')!), given = new TextEncoder().encode(tokenDigest);
    if (expected.byteLength !== given.byteLength || !crypto.subtle.timingSafeEqual(expected, given)) return refuse(403, 'enrollment token is not valid for this task');
    const row = this.#sql.exec('SELECT identity_key FROM devices WHERE id = ?', device).toArray()[0];
    if (row) {
      const same = equal(new Uint8Array(row.identity_key as ArrayBuffer), identityKey);
      return same ? { enrolled: false } : refuse(409, `device '${device}' is enrolled with another identity key`);
    }
    this.#sql.exec('INSERT INTO devices (id, identity_key, enrolled_at) VALUES (?, ?, ?)', device, identityKey, new Date().toISOString());
    if (this.#server) this.#server.enrolled = { ...this.#server.enrolled, [device]: identityKey };
    return { enrolled: true };
  }

  roundInfo(): RoundInfo | Refusal {
    const s = this.#settings();
    if (!s) return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
    const p = this.#pointer();
    const advertised = Number(this.#sql.exec("SELECT COUNT(*) AS n FROM messages WHERE round = ? AND kind = 'advertise-keys'", p.round).one().n);
    return {
      task: s.task, round: p.round, roundId: p.roundId, stage: p.stage, open: p.stage === 'advertise-keys' && advertised < s.devicesPerRound,
      graphSeed: p.graphSeed, neighbours: s.secagg.neighbours, threshold: s.secagg.threshold, length: updateLength(s),
      fixedPoint: this.#fixedPoint(s), distributedDp: ddgaussFor(s), weightsVersion: p.weightsVersion, training: s.training, privacy: s.privacy, spec: s.spec,
      deadline: new Date(p.deadline).toISOString(),
    };
  }

  weights(): { version: number; bytes: Uint8Array } | Refusal {
    if (!this.#settings()) return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
    return { version: this.#pointer().weightsVersion, bytes: this.#readBlob('weights')! };
  }

  /**
   * One SecAgg+ message from a device (wire format; bytes, or the request's body stream). `epsilonSpent` is what the
   * device reports having spent; `client` is the caller's address (rate-limit key).
   */
  async receive(body: Uint8Array | ReadableStream<Uint8Array>, epsilonSpent?: number, client = ''): Promise<ReceiveResult> {
    return this.#exclusive(async (): Promise<ReceiveResult> => {
      const s = this.#settings();
      if (!s) return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
      // The body is read only now, when it is this message's turn: a round's devices uploading at once wait in
      // flow control rather than each parking its whole masked input (4·d bytes) in memory here and in the Worker.
      const bytes = body instanceof Uint8Array ? body : new Uint8Array(await new Response(body).arrayBuffer());
      let m: DeviceMessage;
      try {
        m = decodeMessage(bytes);
      } catch (e) {
        return refuse(400, `not a SecAgg+ message: ${(e as Error).message}`);
      }
      // Deadlines are checked first: a late message meets the next stage.
      await this.#advance(false);
      const p = this.#pointer();
      if (p.stage === 'finished') return refuse(422, 'the task has finished');
      const state = await this.#state(s, p);
      // Per device (the claimed sender) and caller address, so a forger elsewhere cannot spend a device's tokens;
      // the edge's per-IP limit stays in front of this for floods under fresh names.
      const limited = this.#messageLimit.take(`${m.from}@${client}`);
      if (!limited.ok) return tooFast(m.from, limited.retryAfterSeconds);
      const digest = m.stage === 'masked-input' ? toBase64(await sha256(bytes)) : '';
      if (m.stage === 'masked-input' && m.roundId === p.roundId) {
        const prior = this.#sql.exec('SELECT digest FROM contributions WHERE round = ? AND device = ?', p.round, m.from).toArray()[0];
        if (prior) return prior.digest === digest ? { accepted: true as const, duplicate: true, stage: p.stage } : refuse(409, `${m.from} already sent a different masked input this round`);
      }
      if (m.stage !== 'masked-input' && m.roundId === p.roundId) {
        const prior = this.#sql.exec('SELECT bytes FROM messages WHERE round = ? AND kind = ? AND device = ?', p.round, m.stage, m.from).toArray()[0];
        if (prior) {
          return equal(new Uint8Array(prior.bytes as ArrayBuffer), bytes) ? { accepted: true as const, duplicate: true, stage: p.stage } : refuse(409, `${m.from} already sent a different ${m.stage} message this round`);
        }
      }
      if (m.stage === 'advertise-keys' && m.roundId === p.roundId && p.stage === 'advertise-keys' && Object.keys(state.ads).length >= s.devicesPerRound) return refuse(422, 'this round is full; check in for the next one');
      try {
        await serverReceive(state, m);
      } catch (e) {
        if (!(e instanceof SecAggError)) throw e;
        const status = /not enrolled|identity key|bad signature/.test(e.message) ? 403 : 422;
        return refuse(status, e.message);
      }
      const rec = this.#record(p.round)!;
      this.ctx.storage.transactionSync(() => {
        if (m.stage === 'masked-input') {
          this.#writeBlob('sum', this.#bytesOf(state.sum));
          const seq = Number(this.#sql.exec('SELECT COUNT(*) AS n FROM contributions WHERE round = ?', p.round).one().n);
          this.#sql.exec('INSERT INTO contributions (round, device, digest, seq) VALUES (?, ?, ?, ?)', p.round, m.from, digest, seq);
        } else {
          this.#sql.exec('INSERT INTO messages (round, kind, device, bytes) VALUES (?, ?, ?, ?)', p.round, m.stage, m.from, bytes);
        }
        const field = ({ 'advertise-keys': 'advertised', 'share-keys': 'shared', 'masked-input': 'submitted', unmask: 'unmasked' } as const)[m.stage];
        this.#setRecord({ ...rec, [field]: rec[field] + 1 });
        if (epsilonSpent !== undefined && Number.isFinite(epsilonSpent)) this.#sql.exec('UPDATE devices SET epsilon = MAX(epsilon, ?) WHERE id = ?', epsilonSpent, m.from);
      });
      if (m.stage === p.stage) await this.#extendDeadline(s, p);
      const published = await this.#advance(false);
      return { accepted: true as const, duplicate: false, stage: this.#pointer().stage, published };
    }).catch((e) => {
      // Storage and memory must agree: after an unexpected failure, start again from what was stored.
      this.#server = undefined;
      throw e;
    });
  }

  /**
   * What the server relays to `device` after a stage closed; 425 while that stage is still open. With `waitSeconds`
   * the request is held until the stage closes or the wait is over (long poll: one request per stage, not a poll
   * every few hundred ms). `client` (the caller's address) keys the rate limit along with the unauthenticated name.
   */
  async relay(kind: 'broadcast' | 'delivery' | 'unmask', round: number, device: string, client = '', waitSeconds = 0): Promise<{ json: object } | Refusal> {
    const limited = this.#pollLimit.take(`${device}@${client}`);
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

  async #relayNow(kind: 'broadcast' | 'delivery' | 'unmask', round: number, device: string): Promise<{ json: object } | Refusal> {
    return this.#exclusive(async (): Promise<{ json: object } | Refusal> => {
      const s = this.#settings();
      if (!s) return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
      await this.#advance(false);
      const p = this.#pointer();
      if (round !== p.round) return refuse(422, `round ${round} is over; the task is at round ${p.round}`);
      if (p.stage === 'finished') return refuse(422, 'the task has finished');
      await this.#state(s, p);
      const r = this.#relays;
      if (kind === 'broadcast') return r.broadcast ? (r.broadcast.has(device) ? { json: relayToJson.broadcast(r.broadcast.get(device)!) } : refuse(422, `${device} is not in round ${round}`)) : refuse(425, 'advertise-keys is still open');
      if (kind === 'delivery') return r.delivery ? (r.delivery.has(device) ? { json: relayToJson.delivery(r.delivery.get(device)!) } : refuse(422, `${device} did not share keys in round ${round}`)) : refuse(425, 'share-keys is still open');
      return r.unmask ? { json: r.unmask } : refuse(425, 'masked-input is still open');
    });
  }

  /** Held-out accuracy of a published round, as measured by the operator's evaluation job. */
  evaluation(round: number, accuracy: number): { ok: true } | Refusal {
    const rec = this.#record(round);
    if (!rec) return refuse(404, `no round ${round}`);
    if (rec.status !== 'published') return refuse(422, `round ${round} published no model`);
    this.#setRecord({ ...rec, accuracy });
    return { ok: true };
  }

  status(): TaskStatus | Refusal {
    const s = this.#settings();
    if (!s) return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
    const p = this.#pointer();
    const history = this.#sql.exec('SELECT record FROM rounds ORDER BY round').toArray().map((r) => JSON.parse(String(r.record)) as RoundRecord);
    const maxSpent = Number(this.#sql.exec('SELECT MAX(epsilon) AS e FROM devices').one().e ?? 0);
    return {
      task: s.task, model: s.model, alias: s.alias, status: p.stage === 'finished' ? 'finished' : 'running', round: p.round, stage: p.stage,
      rounds: s.rounds, devicesPerRound: s.devicesPerRound, enrolledDevices: Number(this.#sql.exec('SELECT COUNT(*) AS n FROM devices').one().n),
      history, publishedVersions: history.filter((h) => h.version).map((h) => h.version!), privacy: s.privacy ? { ...s.privacy, maxSpent } : undefined,
      distributedDp: s.distributedDp && { ...s.distributedDp, epsilon: history.findLast((h) => h.clientEpsilon !== undefined)?.clientEpsilon ?? 0 },
    };
  }

  /** Closes the current stage now (operators and tests; deadlines do the same). */
  async closeStage(): Promise<{ stage: TaskStage; published?: string }> {
    return this.#exclusive(async () => ({ published: await this.#advance(true), stage: this.#pointer().stage }));
  }
}
