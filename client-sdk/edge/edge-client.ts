/**
 * EdgeClient: typed calls to a Fedge edge — OIP v2 inference (JSON or binary tensors), model metadata and bytes,
 * model management (admin token) and federated task status. Request and answer types are the route contract's
 * (./contract.ts, generated from functions/contract) or the Worker's own (federated/oip, federated/aggregation), so
 * client and server cannot drift apart silently.
 * Every call takes an AbortSignal; each attempt has a timeout; 429/503 and network failures are retried with
 * backoff and jitter, honouring Retry-After; an error answer becomes an EdgeError with the server's message.
 */
import type { ModelSummary, TensorMeta, VersionRecord } from '../../federated/oip/model-records.ts';
import type { TaskLifecycle, TaskStatus, TaskSummary } from '../../federated/aggregation/task-protocol.ts';
import { EXECUTION_PROVIDER_HEADER, MODEL_SHA256_HEADER, MODEL_VERSION_HEADER } from '../../federated/http/headers.ts';
import type * as Contract from './contract.ts';
import { EdgeError, request } from './http.ts';
import { decodeInferResponse, encodeInferRequest, HEADER_LENGTH, type InferResponse } from './oip-codec.ts';
import { type Tensor, type TensorInput, toTensor } from './tensors.ts';
import { sseData } from './sse.ts';
import type { GenerateParameters } from '../../federated/generation/oip-parameters.ts';

export type { ModelSummary, TensorMeta, VersionRecord, TaskLifecycle, TaskStatus, TaskSummary, InferResponse };
export type { GenerateParameters };
export type {
  AliasResult,
  GenerateResponse,
  GenerateStreamEvent,
  CreateTaskRequest,
  DeleteResult,
  ModelMetadata,
  ServerMetadata,
  TaskCreated,
  TaskDeleted,
  TaskList,
} from './contract.ts';

export interface EdgeClientOptions {
  /** Base URL of the edge, e.g. https://fedge.example.workers.dev */
  url: string;
  /** Admin token, for model management and task creation only. */
  adminToken?: string | undefined;
  /** Per-attempt timeout in ms (default 30,000). */
  timeoutMs?: number | undefined;
  /** Retries on 429/503/network failure (default 4). */
  retries?: number | undefined;
  /** Inputs of at least this many bytes go as binary tensor data when `binary: 'auto'` (default 1,024). */
  binaryThreshold?: number | undefined;
  fetch?: typeof fetch | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface InferOptions extends CallOptions {
  /** A version or alias (default: the model's `latest`). */
  version?: string | undefined;
  /** Only these outputs (default: all). */
  outputs?: string[] | undefined;
  /** Binary tensor data for inputs: always, never, or 'auto' (default) by size. */
  binary?: boolean | 'auto' | undefined;
  /** Ask for outputs as binary data (default true). */
  binaryOutputs?: boolean | undefined;
  id?: string | undefined;
}

export interface InferResult extends InferResponse {
  /** Where the edge ran it (its execution provider), from Fedge-Execution-Provider. */
  provider?: string | undefined;
  /** Round-trip time of the successful attempt, ms. */
  ms: number;
}

const path = (...parts: string[]) => parts.map(encodeURIComponent).join('/');
/** A model's OIP path: its `latest`, or a version or alias. */
const modelPath = (name: string, version?: string) =>
  `/v2/models/${version === undefined ? path(name) : path(name, 'versions', version)}`;

/** A JSON request: `method`, the JSON header, `body` serialised. */
const sendJson = (method: string, body: unknown) => ({
  method,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
});
const generateBody = (prompt: string, parameters: GenerateParameters) =>
  sendJson('POST', { text_input: prompt, parameters });

export class EdgeClient {
  readonly url: string;
  readonly #o: EdgeClientOptions;

  constructor(options: EdgeClientOptions) {
    if (!options?.url) throw new TypeError('EdgeClient needs { url }');
    this.url = options.url.replace(/\/+$/, '');
    this.#o = options;
  }

  async #call(route: string, init: RequestInit & { admin?: boolean }, o: CallOptions = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (init.admin) {
      if (!this.#o.adminToken)
        throw new EdgeError(401, 'this call needs the admin token: new EdgeClient({ url, adminToken })');
      headers.set('Authorization', `Bearer ${this.#o.adminToken}`);
    }
    return request(
      `${this.url}${route}`,
      { ...init, headers },
      { fetch: this.#o.fetch, signal: o.signal, timeoutMs: this.#o.timeoutMs ?? 30_000, retries: this.#o.retries ?? 4 },
    );
  }

  async #json<T>(route: string, init: RequestInit & { admin?: boolean } = {}, o?: CallOptions): Promise<T> {
    return (await (await this.#call(route, init, o)).json()) as T;
  }

  // ---- OIP v2 ---------------------------------------------------------------------------------------------

  server(o?: CallOptions): Promise<Contract.ServerMetadata> {
    return this.#json('/v2', {}, o);
  }

  /** Whether the edge is ready to serve (false on a non-2xx answer, throws when it cannot be reached). */
  async ready(o?: CallOptions): Promise<boolean> {
    try {
      await this.#call('/v2/health/ready', {}, o);
      return true;
    } catch (e) {
      if (e instanceof EdgeError && e.status >= 400) return false;
      throw e;
    }
  }

  async models(o?: CallOptions): Promise<ModelSummary[]> {
    return (await this.#json<Contract.ModelList>('/v2/models', {}, o)).models;
  }

  model(name: string, version?: string, o?: CallOptions): Promise<Contract.ModelMetadata> {
    return this.#json(modelPath(name, version), {}, o);
  }

  /** Runs `name` on the edge. Inputs by name; typed arrays in, typed arrays (with shapes) out. */
  async infer(name: string, inputs: Record<string, TensorInput>, o: InferOptions = {}): Promise<InferResult> {
    const tensors: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) tensors[k] = toTensor(k, v);
    const { body, headers } = encodeInferRequest(tensors, {
      binary: o.binary ?? 'auto',
      binaryThreshold: this.#o.binaryThreshold ?? 1024,
      binaryOutputs: o.binaryOutputs ?? true,
      outputs: o.outputs,
      id: o.id,
    });
    const started = performance.now();
    const res = await this.#call(`${modelPath(name, o.version)}/infer`, { method: 'POST', headers, body }, o);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const ms = performance.now() - started;
    return {
      ...decodeInferResponse(bytes, res.headers.get(HEADER_LENGTH)),
      provider: res.headers.get(EXECUTION_PROVIDER_HEADER) ?? undefined,
      ms,
    };
  }

  // ---- text generation ---------------------------------------------------------------------------------------

  /** Generates text with a language model on the edge (OIP generate); `temperature: 0` is greedy. */
  generate(
    name: string,
    prompt: string,
    parameters: GenerateParameters = {},
    o: CallOptions & { version?: string | undefined } = {},
  ): Promise<Contract.GenerateResponse> {
    return this.#json(`${modelPath(name, o.version)}/generate`, generateBody(prompt, parameters), o);
  }

  /**
   * The same, as the text arrives (OIP generate_stream): yields each new piece of text, returns the details (why it
   * stopped, token counts). Leaving the loop early, or aborting `signal`, ends the generation on the edge.
   */
  async *generateStream(
    name: string,
    prompt: string,
    parameters: GenerateParameters = {},
    o: CallOptions & { version?: string | undefined } = {},
  ): AsyncGenerator<string, Contract.GenerateStreamEvent['details']> {
    const res = await this.#call(`${modelPath(name, o.version)}/generate_stream`, generateBody(prompt, parameters), o);
    for await (const data of sseData(res.body!)) {
      const event = JSON.parse(data) as Contract.GenerateStreamEvent;
      if (event.error) throw new EdgeError(res.status, event.error);
      if (event.text_output) yield event.text_output;
      if (event.done) return event.details;
    }
    throw new EdgeError(res.status, 'the stream ended early');
  }

  /** The ONNX bytes of a version (or what an alias points at), with the version and sha256 the edge reports. */
  async modelBytes(
    name: string,
    version?: string,
    o?: CallOptions,
  ): Promise<{ bytes: Uint8Array; version: string; sha256: string }> {
    const res = await this.#call(`${modelPath(name, version)}/onnx`, {}, o);
    return {
      bytes: new Uint8Array(await res.arrayBuffer()),
      version: res.headers.get(MODEL_VERSION_HEADER) ?? version ?? '',
      sha256: res.headers.get(MODEL_SHA256_HEADER) ?? '',
    };
  }

  // ---- model management (admin) ----------------------------------------------------------------------------

  /**
   * Uploads a version (admin). `warmup` gives the inputs it must run on before it is stored (`name:1x512,sr:=16000`,
   * HTTP API: uploads); without it, a run on inputs built from the metadata that fails is reported in `probe`.
   */
  uploadModel(
    name: string,
    version: string,
    onnx: Uint8Array,
    o?: CallOptions & { warmup?: string },
  ): Promise<VersionRecord> {
    const query = o?.warmup === undefined ? '' : `?warmup=${encodeURIComponent(o.warmup)}`;
    return this.#json(
      `/v1/models/${path(name, 'versions', version)}${query}`,
      {
        method: 'PUT',
        admin: true,
        headers: { 'Content-Type': 'application/octet-stream' },
        body: onnx as Uint8Array<ArrayBuffer>,
      },
      o,
    );
  }

  setAlias(name: string, alias: string, version: string, o?: CallOptions): Promise<Contract.AliasResult> {
    const body: Contract.SetAliasRequest = { version };
    return this.#json(`/v1/models/${path(name, 'aliases', alias)}`, { ...sendJson('PUT', body), admin: true }, o);
  }

  deleteVersion(name: string, version: string, o?: CallOptions): Promise<Contract.DeleteResult> {
    return this.#json(`/v1/models/${path(name, 'versions', version)}`, { method: 'DELETE', admin: true }, o);
  }

  // ---- federated tasks -------------------------------------------------------------------------------------

  /**
   * Creates a task (admin): 201 `created: true`, or `created: false` when it exists with exactly these settings.
   * docs/http-api.md "Creating a task" explains the body's fields; docs/integrate.md has complete bodies.
   */
  createTask(body: Contract.CreateTaskRequest, o?: CallOptions): Promise<Contract.TaskCreated> {
    return this.#json('/v1/tasks', { ...sendJson('POST', body), admin: true }, o);
  }

  /**
   * The tasks that exist, by name, a page at a time (GET /v1/tasks): pass `next` back as `after` for the next page.
   * `status` keeps only running, paused or finished tasks (`active`: running or paused).
   */
  tasks(
    page: { after?: string; limit?: number; status?: TaskLifecycle | 'active' } = {},
    o?: CallOptions,
  ): Promise<Contract.TaskList> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(page)) if (v !== undefined) q.set(k, String(v));
    return this.#json(`/v1/tasks${q.size ? `?${q}` : ''}`, {}, o);
  }

  task(name: string, o?: CallOptions): Promise<TaskStatus> {
    return this.#json(`/v1/tasks/${path(name)}`, {}, o);
  }

  /** Stops a task's clock (admin): its round waits where it is, devices' messages are refused until it resumes. */
  pauseTask(name: string, o?: CallOptions): Promise<Contract.TaskLifecycle> {
    return this.#json(`/v1/tasks/${path(name, 'pause')}`, { method: 'POST', admin: true }, o);
  }

  /** Starts a paused task's clock again (admin): the current stage gets a full stageSeconds. */
  resumeTask(name: string, o?: CallOptions): Promise<Contract.TaskLifecycle> {
    return this.#json(`/v1/tasks/${path(name, 'resume')}`, { method: 'POST', admin: true }, o);
  }

  /** Ends a task for good (admin): a round under way is abandoned; published versions stay served. */
  finishTask(name: string, o?: CallOptions): Promise<Contract.TaskLifecycle & { status: 'finished' }> {
    return this.#json(`/v1/tasks/${path(name, 'finish')}`, { method: 'POST', admin: true }, o);
  }

  /** Deletes a task and everything it stored (admin); the model versions it published stay. */
  deleteTask(name: string, o?: CallOptions): Promise<Contract.TaskDeleted> {
    return this.#json(`/v1/tasks/${path(name)}`, { method: 'DELETE', admin: true }, o);
  }
}
