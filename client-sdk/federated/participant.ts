/**
 * Participant: one device's part in a federated task. Per round: read the round, download the global weights
 * (cached by version) — for a task on a served model's head, also the model once (sha256-pinned) to embed the
 * examples with its frozen body (base-body.ts) —, fine-tune them on the device's own examples with Trainer (DP-SGD when the task asks,
 * charged to the device's PrivacyLedger), encode the weight update in fixed point, and run the SecAgg+ stages
 * (federated/secagg) against the task — so the edge only ever sees this device's update masked.
 * Messages are retried with backoff (the task treats a byte-identical retry as a no-op), and so is every other
 * idempotent request (round, weights, relays) on 5xx and network failures, for `retryForMs` — a device outlasts a
 * server restart mid-round; a stage that has not closed yet is long-polled; relay requests carry the device's
 * signature (only it may read what is relayed to it); an AbortSignal stops the device cleanly (a dropout).
 * Before it trains or sends anything, the device checks the round's parameters keep its input private
 * (round-policy.ts, ddgaussProblem) and throws UnsafeRoundError when they do not.
 */
import {
  clientAdvertiseKeys,
  clientMaskedInput,
  clientShareKeys,
  clientUnmask,
  type ClientState,
  type DeviceIdentity,
} from '../../federated/secagg/client.ts';
import { encodeMessage } from '../../federated/secagg/wire.ts';
import { fromBase64, toBase64 } from '../../federated/bytes.ts';
import { updateCodec } from '../../federated/aggregation/update-codec.ts';
import { ddgaussProblem } from '../../federated/dp/distributed-dp.ts';
import { UnsafeRoundError, checkRoundParameters, minContributors } from '../../federated/secagg/round-policy.ts';
import { sign } from '../../federated/secagg/primitives.ts';
import type { DeviceMessage, RoundConfig, Stage } from '../../federated/secagg/messages.ts';
import { flattenWeights, unflattenWeights } from '../../federated/model/flat-weights.ts';
import { DEVICE_SIGNATURE_HEADER, EPSILON_SPENT_HEADER, WEIGHTS_VERSION_HEADER } from '../../federated/http/headers.ts';
import {
  type RoundInfo,
  type TaskAdapter,
  type TaskBase,
  type TaskStatus,
  isDecoderTask,
  relayFromJson,
  relaySigningBytes,
} from '../../federated/aggregation/task-protocol.ts';
import { Trainer, type Examples, type FitResult, type PrivacyOptions } from '../training/trainer.ts';
import type { BackendName } from '../training/backend.ts';
import { PrivacyBudgetError, type PrivacyLedger, type Reservation } from '../privacy/ledger.ts';
import { EdgeError, request, sleep } from '../edge/http.ts';
import { EdgeClient } from '../edge/edge-client.ts';
import type { ModelCache } from '../local/model-cache.ts';
import type { Provider } from '../local/local-model.ts';
import { BaseBody } from './base-body.ts';
import {
  type LanguageBase,
  type TextData,
  isTextData,
  readLanguageBase,
  textWindows,
  trainLanguageModel,
} from './lm-round.ts';
import type { LmFitResult } from '../training/lm-trainer.ts';
import { sha256Hex } from '../../federated/model/digest.ts';
import type { EnrollmentCredential } from '../../federated/aggregation/enrollment.ts';
import { cohortProblem } from '../../federated/aggregation/cohort.ts';

/** Statuses an idempotent request retries: rate limits, and the server (or a proxy in front) failing or restarting. */
const RETRY_IDEMPOTENT = [429, 500, 502, 503, 504];

/** What the device is doing: its own steps around the round's SecAgg+ stages (secagg/messages.ts). */
export type ParticipantStage = 'checking-in' | 'downloading' | 'training' | Stage | 'done';

export interface ParticipantOptions {
  /** Base URL of the edge, e.g. http://127.0.0.1:8787 */
  url: string;
  task: string;
  identity: DeviceIdentity;
  /** Charged for every local training run when the task trains with DP. */
  ledger?: PrivacyLedger | undefined;
  /** Data source the ledger charges (default `task:<task>`: one budget per task's data). */
  source?: string | undefined;
  backend?: BackendName | 'auto' | undefined;
  fetch?: typeof fetch | undefined;
  /** How often to ask whether a stage has closed (ms, default 250). */
  pollMs?: number | undefined;
  /** How long an idempotent request keeps retrying 5xx and network failures (ms, default 60 s: a server restart). */
  retryForMs?: number | undefined;
  onProgress?: ((p: { round: number; stage: ParticipantStage }) => void) | undefined;
  /** For tasks on a served model's head: where its bytes are kept (default: LocalModel's), which providers embed. */
  modelCache?: ModelCache | undefined;
  providers?: Provider[] | undefined;
  /** Where onnxruntime-web's WASM binaries are served (LocalModel's `wasmPaths`). */
  wasmPaths?: string | undefined;
}

export interface RoundOutcome {
  round: number;
  status: 'unmasked' | 'skipped';
  reason?: string | undefined;
  examples?: number | undefined;
  /** ε of this device's local training in this round, and what its ledger shows spent. */
  epsilon?: number | undefined;
  spent?: number | undefined;
  /** Size of the masked update this device sent (the SecAgg+ masked-input message): all of its training that left it. */
  maskedBytes?: number | undefined;
}

/** Where a simulated device vanishes (simulations and tests of dropout handling). */
export type DropPoint = 'before-share-keys' | 'before-masked-input' | 'before-unmask';

export class Participant {
  readonly #o: ParticipantOptions;
  #cache: { version: number; weights: Float32Array } | undefined;
  #body: BaseBody | undefined;
  /** The language model a task fine-tunes (its float weights and tokenizer), for the pinned sha256. */
  #language: LanguageBase | undefined;
  /** Embeddings by examples object, for the body they came from: the body is frozen, so a device embeds its data once. */
  readonly #embedded = new WeakMap<Examples, { sha256: string; x: Float32Array }>();

  constructor(options: ParticipantOptions) {
    this.#o = options;
  }

  get device(): string {
    return this.#o.identity.id;
  }

  #url(path: string): string {
    return `${this.#o.url.replace(/\/$/, '')}/v1/tasks/${encodeURIComponent(this.#o.task)}${path}`;
  }

  /** Options for an idempotent request: 5xx and network failures are retried for retryForMs (a restarting server). */
  #idempotent(signal?: AbortSignal) {
    return { fetch: this.#o.fetch, signal, retryStatuses: RETRY_IDEMPOTENT, retryForMs: this.#o.retryForMs ?? 60_000 };
  }

  async #json<T>(path: string, signal?: AbortSignal, headers: Record<string, string> = {}): Promise<T> {
    return (await (await request(this.#url(path), { method: 'GET', headers }, this.#idempotent(signal))).json()) as T;
  }

  /**
   * Registers this device's signing key with the task (needs the task's enrollment token). A task that names an
   * `enrollment.issuerKey` also needs the credential the app's backend minted for this device and key
   * (`mintEnrollmentCredential`, fedge/federated).
   */
  async enroll(
    enrollmentToken: string,
    o: AbortSignal | { signal?: AbortSignal | undefined; credential?: EnrollmentCredential | undefined } = {},
  ): Promise<void> {
    const { signal, credential } = o instanceof AbortSignal ? { signal: o, credential: undefined } : o;
    await request(
      this.#url('/devices'),
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${enrollmentToken}` },
        body: JSON.stringify({
          device: this.device,
          identityKey: toBase64(this.#o.identity.publicKey),
          ...(credential && { credential }),
        }),
      },
      { fetch: this.#o.fetch, signal },
    );
  }

  /** The global weights of `version`, downloaded once per version. */
  async #weights(version: number, signal?: AbortSignal): Promise<Float32Array> {
    if (this.#cache?.version === version) return this.#cache.weights;
    const res = await request(this.#url('/weights'), { method: 'GET' }, this.#idempotent(signal));
    const got = Number(res.headers.get(WEIGHTS_VERSION_HEADER));
    const weights = new Float32Array(await res.arrayBuffer());
    this.#cache = { version: got, weights };
    return weights;
  }

  /** Sends one SecAgg+ message; its size in bytes (what left the device). */
  async #send(m: DeviceMessage, signal?: AbortSignal, epsilonSpent?: number): Promise<number> {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (epsilonSpent !== undefined) headers[EPSILON_SPENT_HEADER] = String(epsilonSpent);
    const body = encodeMessage(m) as Uint8Array<ArrayBuffer>;
    // A message is idempotent at the task (a byte-identical resend is a no-op), so a 5xx from a proxy or a reset
    // Durable Object is safe to retry.
    await request(this.#url('/messages'), { method: 'POST', headers, body }, this.#idempotent(signal));
    return body.byteLength;
  }

  /**
   * Waits for a relay: long polls (the task holds each request up to 20 s until the stage closes, then answers 204
   * if it is still open — not an error, so a browser logs nothing; 425 from an edge without long polling).
   */
  async #relay<T>(kind: 'broadcast' | 'delivery' | 'unmask', round: number, signal?: AbortSignal): Promise<T> {
    const proof = toBase64(
      await sign(this.#o.identity.seed, relaySigningBytes(this.#o.task, round, kind, this.device)),
    );
    for (;;) {
      try {
        const res = await request(
          this.#url(`/rounds/${round}/${kind}?device=${encodeURIComponent(this.device)}&wait=20`),
          { method: 'GET', headers: { [DEVICE_SIGNATURE_HEADER]: proof } },
          this.#idempotent(signal),
        );
        if (res.status !== 204) return (await res.json()) as T;
      } catch (e) {
        if (!(e instanceof EdgeError && e.status === 425)) throw e;
      }
      await sleep((this.#o.pollMs ?? 250) * (0.5 + Math.random()), signal);
    }
  }

  /** The base's body (loaded once per pinned sha256) and the examples' embeddings (computed once per examples). */
  async #embeddings(base: TaskBase, data: Examples, signal?: AbortSignal): Promise<Examples> {
    const hit = this.#embedded.get(data);
    if (hit?.sha256 === base.sha256) return { x: hit.x, y: data.y };
    if (this.#body?.base.sha256 !== base.sha256) {
      await this.#body?.release();
      this.#body = undefined;
      const client = new EdgeClient({ url: this.#o.url, fetch: this.#o.fetch });
      this.#body = await BaseBody.load({
        client,
        base,
        cache: this.#o.modelCache,
        providers: this.#o.providers,
        wasmPaths: this.#o.wasmPaths,
        signal,
      });
    }
    const x = await this.#body.embed(data.x, data.y.length, signal);
    this.#embedded.set(data, { sha256: base.sha256, x });
    return { x, y: data.y };
  }

  /** Frees the base body's session (tasks on a served model's head); the Participant loads it again if it joins on. */
  async release(): Promise<void> {
    await this.#body?.release();
    this.#body = undefined;
  }

  /** A classifier's (or a served model's head's) training: the weights' change, examples counted. */
  async #trainClassifier(
    info: RoundInfo,
    data: Examples | TextData,
    global: Float32Array,
    privacy: PrivacyOptions | undefined,
    signal?: AbortSignal,
  ): Promise<{ delta: Float32Array; weight: number; fit: FitResult }> {
    if (isTextData(data) || isDecoderTask(info.spec))
      throw new TypeError(`task ${info.task} trains a classifier: join it with examples { x, y }, not texts`);
    const spec = info.spec;
    // A task on a served model's head trains on embeddings: the frozen body runs here, once per examples.
    const examples = info.base ? await this.#embeddings(info.base, data, signal) : data;
    const trainer = await Trainer.create({
      spec,
      weights: unflattenWeights(spec, global),
      backend: this.#o.backend ?? 'auto',
    });
    try {
      const fit = await trainer.fit(examples, { ...info.training, signal, privacy });
      const local = flattenWeights(spec, trainer.weights());
      return { delta: local.map((v, i) => v - global[i]!), weight: data.y.length, fit };
    } finally {
      trainer.dispose();
    }
  }

  /** A language model's training (lm-round.ts): the adapter's change, the device's text windows counted. */
  async #trainLanguageModel(
    info: RoundInfo,
    data: Examples | TextData,
    global: Float32Array,
    privacy: PrivacyOptions | undefined,
    signal?: AbortSignal,
  ): Promise<{ delta: Float32Array; weight: number; fit: LmFitResult }> {
    const adapter = info.adapter;
    if (!adapter) throw new TypeError(`task ${info.task} trains a language model but names no adapter`);
    if (!isTextData(data))
      throw new TypeError(`task ${info.task} fine-tunes the language model ${adapter.model}: join it with { texts }`);
    const base = await this.#languageBase(adapter, signal);
    const windows = textWindows(base, data);
    if (!windows.length) throw new TypeError('the texts have fewer than two tokens: nothing to train on');
    const { delta, fit } = await trainLanguageModel({
      base,
      adapter,
      global,
      windows,
      training: info.training,
      privacy,
      backend: this.#o.backend ?? 'auto',
      signal,
    });
    return { delta, weight: windows.length, fit };
  }

  /** The language model a task fine-tunes, downloaded once per pinned sha256 and checked against it. */
  async #languageBase(adapter: TaskAdapter, signal?: AbortSignal): Promise<LanguageBase> {
    const held = this.#language;
    if (held?.sha256 === adapter.sha256) return held;
    const url = `${this.#o.url.replace(/\/$/, '')}/v2/models/${encodeURIComponent(adapter.model)}/versions/${encodeURIComponent(adapter.version)}/onnx`;
    const res = await request(url, { method: 'GET' }, this.#idempotent(signal));
    const bytes = new Uint8Array(await res.arrayBuffer());
    const sha256 = await sha256Hex(bytes);
    if (sha256 !== adapter.sha256)
      throw new TypeError(`${adapter.model}@${adapter.version} is not the base the task pinned (sha256 ${sha256})`);
    const base = readLanguageBase(bytes, sha256);
    this.#language = base;
    return base;
  }

  /**
   * Takes part in the task's current round with `data` (waits for a round that takes devices). Resolves when this
   * device has done its last stage; a refused stage or a round that moved on gives `status: 'skipped'`.
   */
  async joinRound(
    data: Examples | TextData,
    opts: { signal?: AbortSignal; dropAt?: DropPoint; waitMs?: number } = {},
  ): Promise<RoundOutcome> {
    const { signal } = opts;
    const progress = (round: number, stage: ParticipantStage) => this.#o.onProgress?.({ round, stage });
    const until = Date.now() + (opts.waitMs ?? 120_000);
    let info: RoundInfo;
    for (;;) {
      info = await this.#json<RoundInfo>('/round', signal);
      if (info.stage === 'finished') return { round: info.round, status: 'skipped', reason: 'the task has finished' };
      if (info.open) break;
      if (Date.now() > until) return { round: info.round, status: 'skipped', reason: 'no round took devices in time' };
      await sleep((this.#o.pollMs ?? 250) * (0.5 + Math.random()), signal);
    }
    const round = info.round;
    // Nothing is downloaded, trained or sent for a round whose parameters would give this device's input away.
    // A round that announces it publishes with fewer than 3 is refused; later checks hold it to at least 3 anyway.
    checkRoundParameters({ neighbours: info.neighbours, threshold: info.threshold, minContributors: info.minDevices });
    const contributors = minContributors({ minContributors: info.minDevices });
    const ddProblem = info.distributedDp && ddgaussProblem(info.distributedDp, contributors);
    if (ddProblem) throw new UnsafeRoundError(`unsafe round: distributedDp: ${ddProblem}`);
    progress(round, 'downloading');
    const global = await this.#weights(info.weightsVersion, signal);
    let update: Uint32Array, epsilon: number | undefined, spent: number | undefined, weight: number;
    let reservation: Reservation | undefined;
    try {
      progress(round, 'training');
      const privacy = info.privacy && {
        l2NormClip: info.privacy.l2NormClip,
        noiseMultiplier: info.privacy.noiseMultiplier,
        delta: info.privacy.delta,
        ledger: this.#o.ledger,
        source: this.#o.source ?? `task:${info.task}`,
        // Held until this round shows whether the update may be unmasked (#settle).
        reserve: true,
      };
      const local = isDecoderTask(info.spec)
        ? await this.#trainLanguageModel(info, data, global, privacy, signal)
        : await this.#trainClassifier(info, data, global, privacy, signal);
      reservation = local.fit.reservation;
      epsilon = local.fit.epsilon;
      spent = local.fit.budget?.spent;
      weight = local.weight;
      // Fixed point, or client-level DP (DDGauss: clip, rotate, round and add this device's share of the noise).
      const codec = updateCodec({
        dimension: local.delta.length,
        fixedPoint: info.fixedPoint,
        distributedDp: info.distributedDp,
        seed: fromBase64(info.graphSeed),
      });
      update = await codec.encode(local.delta, weight);
    } catch (e) {
      await reservation?.release();
      // The device's budget would be exceeded: it sits this round out before saying anything to the task.
      if (e instanceof PrivacyBudgetError) return { round, status: 'skipped', reason: e.message };
      throw e;
    }
    let sent = false;
    const settle = async (outcome: RoundOutcome | undefined, failed = false): Promise<void> => {
      if (!reservation) return;
      if (outcome?.status === 'unmasked' || (sent && !(await this.#neverUnmasked(round, failed, signal))))
        await reservation.commit();
      else await reservation.release();
    };
    const config: RoundConfig = {
      roundId: info.roundId,
      neighbours: info.neighbours,
      threshold: info.threshold,
      graphSeed: fromBase64(info.graphSeed),
      length: info.length,
      minContributors: contributors,
    };
    let outcome: RoundOutcome | undefined;
    try {
      outcome = await this.#stages(
        config,
        round,
        update,
        spent ?? epsilon,
        { ...opts, cohort: info.cohort },
        (v) => (sent = v),
      );
      if (outcome.status === 'unmasked') outcome = { ...outcome, examples: weight, epsilon, spent };
      await settle(outcome);
      return outcome;
    } catch (e) {
      // The round moved on without this device (a stage closed first, or the round was abandoned).
      const movedOn = e instanceof EdgeError && (e.status === 422 || e.status === 409);
      await settle(undefined, !movedOn);
      if (movedOn) return { round, status: 'skipped', reason: e.message };
      throw e;
    }
  }

  /** The SecAgg+ stages of one round (secagg/client.ts); `onMasked` says whether this device's masked input may be at the server. */
  async #stages(
    config: RoundConfig,
    round: number,
    update: Uint32Array,
    epsilonSpent: number | undefined,
    opts: { signal?: AbortSignal | undefined; dropAt?: DropPoint | undefined; cohort?: RoundInfo['cohort'] },
    onMasked: (sent: boolean) => void,
  ): Promise<RoundOutcome> {
    const { signal } = opts;
    const progress = (stage: ParticipantStage) => this.#o.onProgress?.({ round, stage });
    progress('advertise-keys');
    const { state, message } = await clientAdvertiseKeys(config, this.#o.identity);
    await this.#send(message, signal);
    if (opts.dropAt === 'before-share-keys') return { round, status: 'skipped', reason: 'dropped (simulated)' };
    progress('share-keys');
    const broadcast = relayFromJson.broadcast(await this.#relay('broadcast', round, signal));
    if (opts.cohort) await this.#checkCohort(round, opts.cohort, broadcast.roster, signal);
    let step: { state: ClientState; message: DeviceMessage } = await clientShareKeys(state, broadcast);
    await this.#send(step.message, signal);
    if (opts.dropAt === 'before-masked-input') return { round, status: 'skipped', reason: 'dropped (simulated)' };
    progress('masked-input');
    const delivery = relayFromJson.delivery(await this.#relay('delivery', round, signal));
    step = await clientMaskedInput(step.state, delivery, update);
    // From the moment it is sent the input may be at the server — unless the server refused it (a 4xx).
    onMasked(true);
    let maskedBytes: number;
    try {
      maskedBytes = await this.#send(step.message, signal, epsilonSpent);
    } catch (e) {
      if (e instanceof EdgeError && e.status >= 400 && e.status < 500) onMasked(false);
      throw e;
    }
    if (opts.dropAt === 'before-unmask') return { round, status: 'skipped', reason: 'dropped (simulated)' };
    progress('unmask');
    const unmask = await this.#relay<Parameters<typeof relayFromJson.unmask>[0]>('unmask', round, signal);
    step = await clientUnmask(step.state, relayFromJson.unmask(unmask));
    await this.#send(step.message, signal);
    progress('done');
    return { round, status: 'unmasked', maskedBytes };
  }

  /**
   * A sampled round's cohort, checked before this device shares anything: the seed revealed after check-in must be
   * the one committed when the round opened, and must draw every device on the roster (cohort.ts). A round that
   * has moved on meanwhile is left to refuse this device's next message.
   */
  async #checkCohort(
    round: number,
    cohort: NonNullable<RoundInfo['cohort']>,
    roster: readonly string[],
    signal?: AbortSignal,
  ): Promise<void> {
    const now = await this.#json<RoundInfo>('/round', signal);
    if (now.round !== round) return;
    const problem = now.cohort?.seed
      ? await cohortProblem(fromBase64(now.cohort.seed), fromBase64(cohort.commitment), cohort.sampleRate, roster)
      : 'the cohort seed was not revealed when check-in closed';
    if (problem) throw new UnsafeRoundError(`unsafe round: cohort: ${problem}`);
  }

  /**
   * Whether round `round` certainly unmasked no input, so this device's update never left it unmasked: the task's
   * record of the round shows it ended without a published model and without a single unmask message (no share of
   * anyone's self-mask was revealed). Unknown — the record unreadable, the round still running, or `failed` (this
   * device stopped on an error of its own) — counts as unmasked: the ledger keeps the charge.
   */
  async #neverUnmasked(round: number, failed: boolean, signal?: AbortSignal): Promise<boolean> {
    if (failed) return false;
    try {
      const status = await this.#json<TaskStatus>('', signal);
      const rec = status.history.find((h) => h.round === round);
      return rec !== undefined && rec.status === 'abandoned' && rec.unmasked === 0;
    } catch {
      return false;
    }
  }
}
