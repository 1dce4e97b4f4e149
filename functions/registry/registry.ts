/**
 * The registry as routes see it: version/alias resolution through the ModelCatalog Durable Object,
 * bytes from R2, sessions from the isolate's cache. Bundled models are registered once per isolate before the
 * catalog is first read or written (every method waits for that itself); the catalog is reached only through here,
 * so every write this isolate makes drops its cached resolutions.
 */
import { unknownModel } from './errors.ts';
import { quote, quoteList } from '../inference/quote.ts';
import { type BatchingOptions, SessionCache } from '../inference/session-cache.ts';
import type { LoadedModel } from '../inference/model-loader.ts';
import type { Tensor } from '../inference/tensor-codec.ts';
import { getBlob } from './blob-store.ts';
import { registerBundledModels } from './default-models.ts';
import type { ModelCatalog } from './model-catalog.ts';
import type { ModelSummary, VersionRecord } from './model-record.ts';
import { ResolutionCache } from './resolution-cache.ts';
import { type Publication, publishModel } from './publish-model.ts';
import { RunTimer } from '../metrics/run-timing.ts';
import { recordInference } from '../metrics/record-inference.ts';
import { ort } from '../inference/ort-runtime.ts';
import { LanguageModelError } from '../../federated/generation/errors.ts';
import type { DecoderStep } from '../../federated/generation/decode-loop.ts';
import type { LanguageModel } from '../../federated/generation/language-model.ts';
import { ortDecoderStep } from '../../federated/generation/ort-step.ts';

export class Registry {
  readonly sessions: SessionCache;
  readonly #resolutions: ResolutionCache;
  readonly #env: Env;
  #bundled: Promise<void> | undefined;

  constructor(env: Env, sessionCacheSize: number, catalogCacheMs: number, batching?: BatchingOptions) {
    this.#env = env;
    this.sessions = new SessionCache(sessionCacheSize, batching);
    this.#resolutions = new ResolutionCache(catalogCacheMs);
  }

  get #catalog(): DurableObjectStub<ModelCatalog> {
    return this.#env.MODEL_CATALOG.getByName('global');
  }

  /** Registers the bundled models once per isolate (retried on the next call if it failed). */
  #ready(): Promise<void> {
    this.#bundled ??= registerBundledModels(this.#env, this.#catalog).catch((e) => {
      this.#bundled = undefined;
      throw e;
    });
    return this.#bundled;
  }

  /** The resolution this isolate holds for (model, ref), if it is fresh: no Durable Object round trip, no promise. */
  cached(model: string, ref?: string): VersionRecord | undefined {
    return this.#resolutions.get(model, ref);
  }

  /** The version named (or the alias named), or `latest`; 404 with what exists when there is none. */
  async resolve(model: string, ref?: string): Promise<VersionRecord> {
    const cached = this.#resolutions.get(model, ref);
    if (cached) return cached;
    await this.#ready();
    const record = await this.#catalog.resolve(model, ref);
    if (record) {
      this.#resolutions.set(model, ref, record);
      return record;
    }
    const summary = await this.#catalog.getModel(model);
    if (!summary) unknownModel(`unknown model ${quote(model)}`);
    if (ref === undefined)
      unknownModel(`model ${quote(model)} has no 'latest' alias; name a version (${quoteList(summary.versions)})`);
    unknownModel(
      `model ${quote(model)} has no version or alias ${quote(ref)}; versions: ${quoteList(summary.versions) || 'none'}`,
    );
  }

  /** Every model with its versions and aliases. */
  async listModels(): Promise<ModelSummary[]> {
    await this.#ready();
    return this.#catalog.listModels();
  }

  /** A model's versions and aliases, or null when there is no such model. */
  async getModel(name: string): Promise<ModelSummary | null> {
    await this.#ready();
    return this.#catalog.getModel(name);
  }

  /** Catalog writes go through here so this isolate never serves a resolution older than its own write. */
  publish(p: Publication) {
    return this.#write(() => publishModel(this.#env, this.#catalog, p));
  }

  setAlias(...args: Parameters<ModelCatalog['setAlias']>) {
    return this.#write(async () => await this.#catalog.setAlias(...args));
  }

  deleteAlias(...args: Parameters<ModelCatalog['deleteAlias']>) {
    return this.#write(async () => await this.#catalog.deleteAlias(...args));
  }

  deleteVersion(...args: Parameters<ModelCatalog['deleteVersion']>) {
    return this.#write(async () => await this.#catalog.deleteVersion(...args));
  }

  /** Drops this isolate's cached resolutions (after a write made elsewhere, e.g. a task publishing). */
  forget(): void {
    this.#resolutions.clear();
  }

  async #write<T>(op: () => Promise<T>): Promise<T> {
    await this.#ready();
    try {
      return await op();
    } finally {
      this.#resolutions.clear();
    }
  }

  load(record: VersionRecord): Promise<LoadedModel> {
    return this.sessions.get(record.sha256, () => getBlob(this.#env.MODEL_BLOBS, record.sha256));
  }

  /** The language model a version is (loaded into this isolate), and a step of its decode loop on the shared session. */
  async languageModel(record: VersionRecord): Promise<{ model: LanguageModel; step: DecoderStep }> {
    const loaded = await this.load(record);
    if (!loaded.language)
      throw new LanguageModelError(
        `${quote(record.model)} version ${quote(record.version)} is not a decoder that carries its tokenizer (see fedge pack)`,
      );
    const bytes = () => getBlob(this.#env.MODEL_BLOBS, record.sha256);
    const step = ortDecoderStep(ort.Tensor, (feeds) =>
      this.sessions.runSessionJob(record.sha256, bytes, (m) => m.session.run(feeds)),
    );
    return { model: loaded.language, step };
  }

  /** Runs a version; every run, failed or not, is counted (functions/metrics: statistics, /metrics, Analytics Engine). */
  async run(record: VersionRecord, inputs: Tensor[], outputs: string[]): Promise<Tensor[]> {
    const timer = new RunTimer();
    try {
      const result = await this.sessions.run(
        record.sha256,
        () => getBlob(this.#env.MODEL_BLOBS, record.sha256),
        inputs,
        outputs,
        timer,
      );
      recordInference(this.#env, record, inputs, timer, true);
      return result;
    } catch (e) {
      recordInference(this.#env, record, inputs, timer, false);
      throw e;
    }
  }
}
