/**
 * TaskClient: the one thing routes call for a task, hiding which Durable Object answers. The task's own object
 * (FederatedTask) takes lifecycle, enrolment, status, weights and check-in; past check-in, a sharded round's
 * messages and relays belong to the sender's shard aggregator (ShardAggregator) — the client asks the task where
 * and follows. It also keeps what every caller would otherwise have to remember: a call whose round published a
 * version drops this isolate's cached resolutions (the task's object published it, not this isolate's registry),
 * and finishing or deleting a task releases its base pin and its directory entry.
 */
import { taskBaseAlias } from '../registry/model-record.ts';
import { services } from '../services.ts';
import type { FederatedTask } from './federated-task.ts';
import type { EnrollmentCredential } from '../../federated/aggregation/enrollment.ts';
import type { RoundObject } from './round/round-object.ts';
import type { ReceiveResult, RelayKind, RelayResult, Refusal } from './task-answers.ts';
import { type TaskEntry, findTask, unregisterTask } from './task-directory.ts';

/** A SecAgg+ message as the route read it: its head, and for a masked input its words streamed in chunks. */
export type IncomingMessage =
  | {
      stage: 'masked-input';
      head: { roundId: string; from: string; signature: Uint8Array };
      words: ReadableStream<Uint8Array>;
    }
  | { stage: 'advertise-keys' | 'share-keys' | 'unmask'; head: { roundId: string; from: string }; bytes: Uint8Array };

export class TaskClient {
  readonly name: string;
  /** The directory's entry: the largest message the task takes, whether its rounds are sharded. */
  readonly entry: TaskEntry;
  readonly #env: Env;

  private constructor(env: Env, name: string, entry: TaskEntry) {
    this.#env = env;
    this.name = name;
    this.entry = entry;
  }

  /** The task named, or undefined when no such task exists (and no object is created for the name). */
  static async open(env: Env, name: string): Promise<TaskClient | undefined> {
    const entry = await findTask(env, name);
    return entry && new TaskClient(env, name, entry);
  }

  get #task(): DurableObjectStub<FederatedTask> {
    return this.#env.FEDERATED_TASK.getByName(this.name);
  }

  #published<T extends { published?: string | undefined } | Refusal>(r: T): T {
    if (!('refused' in r) && r.published) services(this.#env).registry.forget();
    return r;
  }

  /** `admin`: the operator's view, which names devices. */
  status(admin = false) {
    return this.#task.status(admin);
  }
  roundInfo() {
    return this.#task.roundInfo();
  }
  weights() {
    return this.#task.weights();
  }
  enroll(
    tokenDigest: string,
    device: string,
    identityKey: Uint8Array,
    o: { address?: string | undefined; credential?: EnrollmentCredential | undefined } = {},
  ) {
    return this.#task.enroll(tokenDigest, device, identityKey, o);
  }
  revoke(device: string) {
    return this.#task.revoke(device);
  }
  /** An evaluation; with a publication gate it may move the task's aliases (this isolate's resolutions are dropped). */
  async evaluation(round: number, accuracy: number) {
    const r = await this.#task.evaluation(round, accuracy);
    if (!('refused' in r) && r.moved) services(this.#env).registry.forget();
    return r;
  }
  pause() {
    return this.#task.pause();
  }
  resume() {
    return this.#task.resume();
  }

  /** One device message, to the object that takes it now: the task, or past check-in of a sharded round its shard's aggregator. */
  async receive(m: IncomingMessage, epsilonSpent?: number): Promise<ReceiveResult> {
    let target: DurableObjectStub<RoundObject> = this.#task;
    if (this.entry.sharded && m.stage !== 'advertise-keys') {
      const { shard } = await this.#task.shardFor(m.head.roundId, m.head.from);
      if (shard) target = this.#env.SHARD_AGGREGATOR.getByName(shard);
    }
    return this.#published(
      m.stage === 'masked-input'
        ? await target.receiveMasked(m.head, m.words, epsilonSpent)
        : await target.receive(m.bytes, epsilonSpent),
    );
  }

  /** What is relayed to `device` after a stage closed (from its shard's aggregator in a sharded round), or a refusal. */
  async relay(
    kind: RelayKind,
    round: number,
    device: string,
    signature: Uint8Array | undefined,
    waitSeconds: number,
  ): Promise<Exclude<RelayResult, { shard: string }>> {
    let r = await this.#task.relay(kind, round, device, signature, waitSeconds);
    if ('shard' in r)
      r = await this.#env.SHARD_AGGREGATOR.getByName(r.shard).relay(kind, round, device, signature, waitSeconds);
    // An aggregator holds its shard's relays itself and never points further: that would be a bug, not a request's fault.
    if ('shard' in r) throw new Error(`task ${this.name}: shard aggregator ${r.shard} redirected a relay again`);
    return r;
  }

  async closeStage() {
    return this.#published(await this.#task.closeStage());
  }

  /** Ends the task (a round under way abandoned) and releases its base pin: nothing will publish into the base again. */
  async finish(): Promise<{ status: 'finished' } | Refusal> {
    const r = await this.#task.finish();
    if ('refused' in r) return r;
    if (r.base) await services(this.#env).registry.deleteAlias(r.base.model, taskBaseAlias(this.name));
    return { status: 'finished' };
  }

  /**
   * Deletes the task: finished first (its current round's aggregators discarded), its base pin released, its storage
   * deleted, then its directory entry — in that order, so a retry after any failure finishes the job. The model
   * versions it published stay in the registry.
   */
  async delete(): Promise<void> {
    const finished = await this.finish();
    if ('refused' in finished && finished.refused.status !== 404)
      throw new Error(`task ${this.name}: finishing before deletion was refused: ${finished.refused.error}`);
    await this.#task.destroy();
    await unregisterTask(this.#env, this.name);
  }
}
