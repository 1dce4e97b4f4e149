/**
 * One SecAgg+ round as plain code over a TaskStore: its stages (advertise-keys → share-keys → masked-input → unmask;
 * Bell et al., CCS 2020, §3), the running masked sum, dropouts, and the robust unmask at the end. The same engine runs
 * a whole unsharded round in the task's object and one shard's round in a shard aggregator; neither object holds
 * round code of its own. No Durable Object here: storage is the TaskStore, transactions and alarms come from the
 * RoundHost — in Node, a SQLite file and a timer (test/rounds/secagg-round.test.ts).
 *
 * What the engine leaves to its owner: who may send now (pause, sharding), what a finished round's sum becomes
 * (publishing, or a shard's report) and what an abandoned round becomes. `step` throws SecAggAbort/SecAggError when
 * the round cannot go on; the owner abandons it.
 *
 * Masked inputs are not stored: each is added to the running sum (O(d) memory and storage however many devices).
 * The SecAgg+ server state lives in memory and is rebuilt from the stored messages after a restart.
 */
import {
  type RoundRecord,
  type TaskSettings,
  type TaskStage,
  relayToJson,
  updateLength,
} from '../../../federated/aggregation/task-protocol.ts';
import { extendedDeadline, nextAction, roundMinimum } from '../../../federated/aggregation/round-controller.ts';
import { DEFAULT_IDLE_SECONDS } from '../../../federated/aggregation/task-settings.ts';
import { concat, equal, fromBase64, toBase64, u32, u8 } from '../../../federated/bytes.ts';
import {
  type DeviceMessage,
  type KeysBroadcast,
  SecAggAbort,
  SecAggAuthError,
  SecAggError,
  type SharesDelivery,
  type UnmaskRequest,
} from '../../../federated/secagg/messages.ts';
import { sha256 } from '../../../federated/secagg/primitives.ts';
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
} from '../../../federated/secagg/server.ts';
import { decodeMessage } from '../../../federated/secagg/wire.ts';
import { type RelayKind, type RelayResult, refuse, type Refusal } from '../task-answers.ts';
import type { RoundPointer, TaskStore } from '../task-store.ts';
import { DeviceRateLimit, MESSAGE_LIMIT } from './device-rate-limit.ts';
import { drawCohort } from '../../../federated/aggregation/cohort.ts';

/** What the engine needs of the object that holds it. */
export interface RoundHost {
  /** Runs `fn` as one storage transaction: a restart sees all of its writes or none. */
  transaction(fn: () => void): void;
  /** Wakes the owner at `at` (ms since the epoch): a stage's deadline. */
  setAlarm(at: number): Promise<void>;
}

/** A device's message body: its wire bytes, or a masked input's payload digest and words (streamed in). */
export type MessageBody = { bytes: Uint8Array } | { payloadDigest: Uint8Array; chunks: () => Iterable<Uint32Array> };

/** Where `step` left the round. */
export type RoundStep =
  | { kind: 'waiting' }
  /** Check-in waited idleSeconds for too few devices: the owner pauses the task. */
  | { kind: 'expired'; reason: string }
  /** Check-in is due to close and the owner asked to take it over (a sharded round starts its shards). */
  | { kind: 'checked-in' }
  /** Unmasked: the survivors' sum. The engine's memory of the round is gone; the owner completes or abandons it. */
  | {
      kind: 'unmasked';
      sum: Uint32Array;
      /** Devices that shared keys, sent a masked input, sent unmask shares; whose inputs the sum holds. */
      sharers: number;
      submitted: number;
      unmasked: number;
      survivors: number;
      /** Revealed shares that failed their check (left out of the reconstruction): who sent whose. */
      badShares: { holder: string; of: string }[];
    };

export type Accepted = { accepted: true; duplicate: boolean };

const RECORD_FIELD = {
  'advertise-keys': 'advertised',
  'share-keys': 'shared',
  'masked-input': 'submitted',
  unmask: 'unmasked',
} as const;

export class SecAggRound {
  readonly #store: TaskStore;
  readonly #host: RoundHost;
  #server: ServerState | undefined;
  #relays: { broadcast?: Map<string, KeysBroadcast>; delivery?: Map<string, SharesDelivery>; unmask?: UnmaskRequest } =
    {};
  /** A device's messages cost tokens only once it is known to be the sender (accept). */
  readonly #messageLimit = new DeviceRateLimit(MESSAGE_LIMIT);

  constructor(store: TaskStore, host: RoundHost) {
    this.#store = store;
    this.#host = host;
  }

  /** Drops what memory holds of the round: the next call rebuilds it from storage. */
  forget(): void {
    this.#server = undefined;
    this.#relays = {};
  }

  /** Opens `pointer`'s round at check-in, with `advertisements` already taken (a shard's, from its coordinator). */
  open(pointer: RoundPointer, advertisements: [string, Uint8Array][] = []): void {
    this.#store.setPointer(pointer);
    this.#store.clearMessages();
    this.#store.deleteBlob('sum');
    this.#store.setRecord({
      round: pointer.round,
      status: 'running',
      advertised: advertisements.length,
      shared: 0,
      submitted: 0,
      unmasked: 0,
      dropouts: 0,
      startedAt: new Date().toISOString(),
    });
    for (const [device, bytes] of advertisements)
      this.#store.addMessage(pointer.round, 'advertise-keys', device, bytes);
    this.forget();
    void this.#host.setAlarm(pointer.deadline);
  }

  /** Records round `p` abandoned, why, and `more` of its record; the owner moves past it in the same transaction. */
  recordAbandoned(p: RoundPointer, reason: string, more: Partial<RoundRecord> = {}): void {
    const rec = this.#store.record(p.round)!;
    this.#store.setRecord({
      ...rec,
      status: 'abandoned',
      reason,
      dropouts: (rec.cohort?.drawn ?? rec.advertised) - rec.unmasked,
      endedAt: new Date().toISOString(),
      ...more,
    });
  }

  /** A device enrolled while the round is in memory: it may check in without a rebuild. */
  enrolled(device: string, identityKey: Uint8Array): void {
    if (this.#server?.enrolled) this.#server.enrolled[device] = identityKey;
  }

  /** Devices that checked in this round. */
  checkedIn(p: RoundPointer): number {
    return this.#store.countMessages(p.round, 'advertise-keys');
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
      if (row.kind === 'close') await this.#close(state, s, p);
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
  async #close(state: ServerState, s: TaskSettings, p: RoundPointer): Promise<void> {
    const round = p.round;
    switch (state.stage) {
      case 'advertise-keys':
        if (s.cohort && p.cohortSeed) await this.#drawCohort(state, s, p);
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
   * Cohort sampling (cohort.ts): of the devices that checked in, only those the round's seed draws stay; the others sit
   * the round out. Deterministic in the stored check-ins and the seed, so a replay draws the same cohort.
   */
  async #drawCohort(state: ServerState, s: TaskSettings, p: RoundPointer): Promise<void> {
    const checkedIn = Object.keys(state.ads);
    const cohort = new Set(await drawCohort(fromBase64(p.cohortSeed!), checkedIn, s.cohort!.sampleRate));
    for (const d of checkedIn) if (!cohort.has(d)) delete state.ads[d];
    const min = roundMinimum(s);
    if (cohort.size < min)
      throw new SecAggAbort(
        `${cohort.size} of the ${checkedIn.length} devices that checked in were drawn (cohort sample rate ${s.cohort!.sampleRate}); a round needs ${min}`,
      );
  }

  /**
   * Closes the current stage if everyone answered or its deadline passed (round-controller.ts), and the next ones
   * that are due too; unmasks at the end. With `handOff`, check-in is not closed here: `checked-in` hands it over.
   */
  async step(s: TaskSettings, p: RoundPointer, o: { force: boolean; handOff?: boolean }): Promise<RoundStep> {
    const state = await this.#state(s, p);
    if (p.stage === 'finished') return { kind: 'waiting' };
    const progress = {
      'advertise-keys': () => ({ answered: Object.keys(state.ads).length, expected: s.devicesPerRound }),
      'share-keys': () => ({ answered: Object.keys(state.shares).length, expected: state.roster.length }),
      'masked-input': () => ({ answered: state.survivors.length, expected: state.sharers.length }),
      unmask: () => ({ answered: Object.keys(state.unmasks).length, expected: state.survivors.length }),
    }[p.stage]();
    const idleSeconds = s.idleSeconds ?? DEFAULT_IDLE_SECONDS;
    const action = nextAction(
      { stage: p.stage, ...progress },
      { stageSeconds: s.stageSeconds, minStart: roundMinimum(s), idleSeconds },
      { now: Date.now(), deadline: p.deadline, opened: p.opened, force: o.force, retryAt: p.retryAt },
    );
    switch (action.kind) {
      case 'wait':
        return { kind: 'waiting' };
      case 'expire':
        return {
          kind: 'expired',
          reason: `check-in expired: ${progress.answered} of the ${roundMinimum(s)} devices a round needs checked in within ${idleSeconds} s`,
        };
      case 'keep-open':
        // Too few devices have checked in yet (or no masked input arrived yet): keep the stage open rather than abandon the round.
        this.#store.setPointer({ ...p, deadline: action.deadline });
        await this.#host.setAlarm(action.deadline);
        return { kind: 'waiting' };
      case 'finish': {
        const submitted = state.survivors.length;
        const result = await serverCloseUnmask(state);
        this.forget();
        return {
          kind: 'unmasked',
          sum: result.sum,
          sharers: state.sharers.length,
          submitted,
          unmasked: Object.keys(state.unmasks).length,
          survivors: result.survivors.length,
          badShares: result.badShares,
        };
      }
    }
    if (p.stage === 'advertise-keys' && o.handOff) return { kind: 'checked-in' };
    const checkedIn = Object.keys(state.ads).length;
    await this.#close(state, s, p);
    const next = state.stage as TaskStage;
    const deadline = Date.now() + s.stageSeconds * 1000;
    this.#host.transaction(() => {
      this.#store.addMessage(p.round, 'close');
      if (p.stage === 'advertise-keys' && s.cohort) {
        const rec = this.#store.record(p.round)!;
        this.#store.setRecord({ ...rec, cohort: { checkedIn, drawn: Object.keys(state.ads).length } });
      }
      this.#store.setPointer({ ...p, stage: next, opened: Date.now(), deadline });
    });
    await this.#host.setAlarm(deadline);
    // A stage whose devices all answered already (e.g. everyone dropped) closes at once.
    return this.step(s, this.#store.pointer(), { force: false });
  }

  /**
   * A decoded message of round `p` (the owner checked that this object takes it now): a byte-identical resend is a
   * no-op (a masked input: the same signature and payload digest), then the sender and signature are checked
   * (serverAuthenticate) and only then the sender's rate limit is spent — a forger cannot use up another device's
   * tokens. Stored with its effects in one transaction; `epsilonSpent` is what the device reports having spent.
   */
  async accept(
    s: TaskSettings,
    p: RoundPointer,
    m: DeviceMessage,
    body: MessageBody,
    epsilonSpent?: number,
  ): Promise<Accepted | Refusal> {
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
    if (same) return { accepted: true, duplicate: true };
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
    this.#host.transaction(() => {
      if (m.stage === 'masked-input') {
        this.#store.writeBlob('sum', u8(state.sum));
        this.#store.addContribution(p.round, m.from, digest);
      } else {
        this.#store.addMessage(p.round, m.stage, m.from, (body as { bytes: Uint8Array }).bytes);
      }
      const field = RECORD_FIELD[m.stage];
      this.#store.setRecord({ ...rec, [field]: rec[field] + 1 } satisfies RoundRecord);
      if (epsilonSpent !== undefined && Number.isFinite(epsilonSpent)) this.#store.reportEpsilon(m.from, epsilonSpent);
    });
    if (m.stage === p.stage) await this.#extendDeadline(s, p);
    return { accepted: true, duplicate: false };
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
    await this.#host.setAlarm(deadline);
  }

  /** What the server relays to `device` in round `p` after a stage closed; 425 while that stage is still open. */
  async relay(s: TaskSettings, p: RoundPointer, kind: RelayKind, device: string): Promise<RelayResult> {
    await this.#state(s, p);
    const r = this.#relays;
    if (kind === 'broadcast')
      return r.broadcast
        ? r.broadcast.has(device)
          ? { json: relayToJson.broadcast(r.broadcast.get(device)!) }
          : refuse(
              422,
              s.cohort && this.#store.message(p.round, 'advertise-keys', device)
                ? `${device} checked in but was not drawn into round ${p.round}'s cohort; check in for the next round`
                : `${device} is not in round ${p.round}`,
            )
        : refuse(425, 'advertise-keys is still open');
    if (kind === 'delivery')
      return r.delivery
        ? r.delivery.has(device)
          ? { json: relayToJson.delivery(r.delivery.get(device)!) }
          : refuse(422, `${device} did not share keys in round ${p.round}`)
        : refuse(425, 'share-keys is still open');
    return r.unmask
      ? r.unmask.survivors.includes(device)
        ? { json: r.unmask }
        : refuse(422, `${device}'s masked input is not in round ${p.round}`)
      : refuse(425, 'masked-input is still open');
  }
}

export const tooFast = (device: string, retryAfterSeconds: number) =>
  refuse(429, `device '${device}' is sending too many requests; retry after ${retryAfterSeconds} s`, retryAfterSeconds);
