/**
 * RoundObject: what a Durable Object that runs SecAgg+ rounds (secagg-round.ts) answers devices — their messages and
 * the relays they fetch — and the one-mutation-at-a-time queue around it. Two objects are one: the task's own
 * (federated-task.ts: lifecycle, check-in, coordination, publishing) and a shard's aggregator (shard-aggregator.ts:
 * begin, accept, report, retire). Each says, in `messageGate`/`relayGate`, whether it takes a device's request now,
 * and, in `stepRound`/`abandonRound`, what the round's end means to it.
 *
 * Whatever one device sends, the object moves on: a message is authenticated before it costs anything (rate limit
 * included), revealed shares are checked on arrival and reconstructed robustly at the end, and any failure while
 * closing a stage or finishing a round abandons that round with the reason instead of escaping from the alarm
 * (which would leave the pointer where it is, every later request failing the same way, also after a restart).
 */
import { DurableObject } from 'cloudflare:workers';
import {
  MAX_RELAY_WAIT_SECONDS,
  relaySigningBytes,
  type TaskSettings,
  updateLength,
} from '../../../federated/aggregation/task-protocol.ts';
import { u8 } from '../../../federated/bytes.ts';
import { type DeviceMessage, SecAggAbort, SecAggError } from '../../../federated/secagg/messages.ts';
import { sha256, verify } from '../../../federated/secagg/primitives.ts';
import { decodeMessage } from '../../../federated/secagg/wire.ts';
import {
  type ReceiveResult,
  type RelayKind,
  type RelayResult,
  type Refusal,
  describe,
  refuse,
} from '../task-answers.ts';
import { type RoundPointer, TaskStore } from '../task-store.ts';
import { DeviceRateLimit, RELAY_LIMIT } from './device-rate-limit.ts';
import { streamToScratch } from './masked-input-stream.ts';
import { type MessageBody, SecAggRound, tooFast } from './secagg-round.ts';

/** Publishing a finished round (R2, catalog) — or a shard's report — is tried this many times before the round is abandoned. */
const MAX_PUBLISH_ATTEMPTS = 4;

export abstract class RoundObject extends DurableObject<Env> {
  protected readonly store: TaskStore;
  protected readonly round: SecAggRound;
  #queue: Promise<unknown> = Promise.resolve();
  /** Relay long polls waiting for the current stage to change. */
  #waiters = new Set<() => void>();
  /** Round and stage the waiters last saw. */
  #stageKey = '';
  readonly #pollLimit = new DeviceRateLimit(RELAY_LIMIT);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new TaskStore(ctx.storage.sql);
    this.round = new SecAggRound(this.store, {
      transaction: (fn) => ctx.storage.transactionSync(fn),
      setAlarm: (at) => ctx.storage.setAlarm(at),
    });
    // Long polls wait for a stage to close: wake them when the round or stage moves, not on every deadline
    // extension (one per message — with 200 devices waiting, that was 200 re-checks per message).
    this.store.onPointer = ({ round, stage }) => {
      if (this.#stageKey !== `${round}/${stage}`) {
        this.#stageKey = `${round}/${stage}`;
        queueMicrotask(() => this.wake());
      }
    };
  }

  // ---- what each object says --------------------------------------------------------------------------------

  /** Why this object does not take `m` now (paused; a sharded round past check-in), or nothing. */
  protected abstract messageGate(p: RoundPointer, m: DeviceMessage): Refusal | undefined;
  /** Where else a relay is, or why this object does not serve it now, or nothing. */
  protected abstract relayGate(p: RoundPointer, device: string): RelayResult | undefined;
  /** Moves the round on (secagg-round.ts `step`) and does what its end means; may throw for the round's sake. */
  protected abstract stepRound(s: TaskSettings, p: RoundPointer, force: boolean): Promise<string | undefined>;
  /** The round could not go on: record why (`detail`: the same naming devices, for the operator) and move past it. */
  protected abstract abandonRound(s: TaskSettings, p: RoundPointer, reason: string, detail?: string): void;
  /** Whether the clock is stopped (a paused task): no stage closes. */
  protected halted(): boolean {
    return false;
  }

  // ---- shared machinery ---------------------------------------------------------------------------------------

  protected wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  protected noTask(): Refusal {
    return refuse(404, `no task '${this.ctx.id.name ?? ''}'`);
  }

  /** One mutation at a time: a round's close (which awaits crypto and R2) never interleaves with a message. */
  protected exclusive<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Moves the round on when a deadline passed or everyone answered. Never throws for a round's sake: whatever goes
   * wrong closing or finishing abandons the round with the reason, so the pointer always moves.
   */
  protected async advance(force: boolean): Promise<string | undefined> {
    const s = this.store.settings();
    if (!s || this.halted()) return;
    const p = this.store.pointer();
    if (p.stage === 'finished') return;
    try {
      return await this.stepRound(s, p, force);
    } catch (e) {
      const expected = e instanceof SecAggAbort || e instanceof SecAggError;
      const now = this.store.pointer();
      if (!expected) console.error(`task ${s.task}: abandoning round ${now.round} after an unexpected failure:`, e);
      // Memory may be half-way through a close: the next round starts from storage.
      this.round.forget();
      if (now.stage !== 'finished')
        this.abandonRound(
          s,
          now,
          expected ? describe(e) : `the round could not be completed: ${describe(e)}`,
          e instanceof SecAggAbort ? e.detail : undefined,
        );
      return;
    }
  }

  /**
   * A finished round's sum could not be handed on (publishing, or a shard's report): the round is tried again from
   * storage after a pause, up to MAX_PUBLISH_ATTEMPTS times; then this throws and the round is abandoned.
   */
  protected async retryLater(s: TaskSettings, p: RoundPointer, what: string, e: unknown): Promise<undefined> {
    const failures = (p.publishFailures ?? 0) + 1;
    if (failures >= MAX_PUBLISH_ATTEMPTS) throw new Error(`${what} failed ${failures} times, last: ${describe(e)}`);
    console.error(
      `task ${s.task} round ${p.round}: ${what} failed (attempt ${failures} of ${MAX_PUBLISH_ATTEMPTS}), retrying:`,
      e,
    );
    // The engine's memory is unmasked now: the retry rebuilds it from storage.
    this.round.forget();
    const retryAt = Date.now() + Math.max(5, s.stageSeconds) * 1000;
    this.store.setPointer({ ...p, publishFailures: failures, retryAt });
    await this.ctx.storage.setAlarm(retryAt);
    return undefined;
  }

  override async alarm(): Promise<void> {
    await this.exclusive(() => this.advance(false));
  }

  // ---- device-facing RPC --------------------------------------------------------------------------------------

  /**
   * One SecAgg+ message from a device (wire format, read by the route bounded in size and time). Decoded against
   * the task's update length before it waits for its turn. Masked inputs normally stream in through receiveMasked;
   * one sent whole is accepted the same way.
   */
  async receive(bytes: Uint8Array, epsilonSpent?: number): Promise<ReceiveResult> {
    const s = this.store.settings();
    if (!s) return this.noTask();
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
    const s = this.store.settings();
    if (!s) {
      await payload.cancel();
      return this.noTask();
    }
    let scratch: string | undefined;
    try {
      const input = await streamToScratch(this.store, payload, updateLength(s), (id) => (scratch = id));
      if (!input.ok) return refuse(400, input.error);
      const m: DeviceMessage = { stage: 'masked-input', ...head, masked: new Uint32Array(0) };
      return await this.#accept(s, m, { payloadDigest: input.payloadDigest, chunks: input.chunks }, epsilonSpent);
    } finally {
      if (scratch) this.store.deleteScratch(scratch);
    }
  }

  /** A decoded message on its turn: deadlines first (a late message meets the next stage), then the round takes it. */
  #accept(s: TaskSettings, m: DeviceMessage, body: MessageBody, epsilonSpent?: number): Promise<ReceiveResult> {
    return this.exclusive(async (): Promise<ReceiveResult> => {
      await this.advance(false);
      const p = this.store.pointer();
      if (p.stage === 'finished') return refuse(422, 'the task has finished');
      const gate = this.messageGate(p, m);
      if (gate) return gate;
      const r = await this.round.accept(s, p, m, body, epsilonSpent);
      if ('refused' in r || r.duplicate) return 'refused' in r ? r : { ...r, stage: p.stage };
      // The message is stored: whatever closing the stage does now, this device's answer stands (advance never throws for the round's sake).
      const published = await this.advance(false);
      return { ...r, stage: this.store.pointer().stage, published };
    }).catch((e) => {
      // Storage and memory must agree: after an unexpected failure, start again from what was stored.
      this.round.forget();
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
    const s = this.store.settings();
    if (!s) return this.noTask();
    if (!signature) return refuse(401, "relays need the device's signature: send Fedge-Device-Signature");
    const key = this.store.identityKey(device);
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

  #relayNow(kind: RelayKind, round: number, device: string): Promise<RelayResult> {
    return this.exclusive(async (): Promise<RelayResult> => {
      const s = this.store.settings();
      if (!s) return this.noTask();
      await this.advance(false);
      const p = this.store.pointer();
      if (round !== p.round) return refuse(422, `round ${round} is over; the task is at round ${p.round}`);
      if (p.stage === 'finished') return refuse(422, 'the task has finished');
      return this.relayGate(p, device) ?? (await this.round.relay(s, p, kind, device));
    }).catch((e) => {
      this.round.forget();
      throw e;
    });
  }

  /** Frees this object's storage and memory; it answers as a task that does not exist. */
  protected async discard(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.round.forget();
    this.store.reset();
    this.wake();
  }
}
