/**
 * Admin actions behind the admin token (kept in this tab's sessionStorage only): upload a model version, move an
 * alias, create a federated task on the MNIST MLP (initial weights: Glorot-uniform, or an fp32 ONNX file).
 */
import { type CreateTaskRequest, EdgeClient } from '../../client-sdk/index.ts';
import { flattenWeights } from '../../federated/model/flat-weights.ts';
import { type ModelSpec, type NamedWeight, parameterShapes } from '../../federated/model/model-spec.ts';
import { importOnnxWeights } from '../../federated/model/onnx-import.ts';
import { toBase64 } from '../../federated/bytes.ts';
import { randomWords } from '../../federated/random.ts';
import { mnistMlp } from '../../models/specs.ts';
import { byId, errorText, say } from './dom.ts';

/** .dev.vars' FEDGE_ADMIN_TOKEN: what `npm start` accepts unless the developer changed it. */
const LOCAL_ADMIN_TOKEN = 'dev-admin-token';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const value = (id: string) => byId<HTMLInputElement>(id).value.trim();
const number = (id: string) => Number(byId<HTMLInputElement>(id).value);

/** Glorot-uniform kernels, zero biases (what tfjs's dense layers start from). */
function glorotWeights(spec: ModelSpec = mnistMlp) {
  return parameterShapes(spec).map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 1) return { name, shape, values: new Float32Array(n) };
    const limit = Math.sqrt(6 / (shape[0]! + shape[1]!));
    // randomWords fills in 64 KiB calls: one getRandomValues call over a 784×256 kernel throws QuotaExceededError.
    const r = randomWords(n);
    return { name, shape, values: Float32Array.from(r, (u) => ((u / 2 ** 32) * 2 - 1) * limit) };
  });
}

export class AdminPanel {
  readonly #url: string;
  readonly #changed: () => void;

  constructor(url: string, onChange: () => void) {
    this.#url = url;
    this.#changed = onChange;
    // Served from this machine (npm start): the local default token from .dev.vars, so the demo works at once.
    // Anywhere else the field starts empty — a deployed edge's token is never in the page.
    byId<HTMLInputElement>('admin-token').value =
      sessionStorage.getItem('fedge.admin') ?? (LOOPBACK.has(location.hostname) ? LOCAL_ADMIN_TOKEN : '');
    byId('admin-token').addEventListener('change', () => sessionStorage.setItem('fedge.admin', value('admin-token')));
    const form = (id: string, action: () => Promise<string>) =>
      byId(id).addEventListener('submit', (e) => {
        e.preventDefault();
        say('admin-status', 'working…');
        action().then(
          (m) => (say('admin-status', m, 'ok'), this.#changed()),
          (err) => say('admin-status', errorText(err), 'error'),
        );
      });
    form('admin-upload', () => this.#upload());
    form('admin-alias', () => this.#alias());
    form('admin-task', () => this.#createTask());
  }

  #client(): EdgeClient {
    return new EdgeClient({ url: this.#url, adminToken: value('admin-token') || undefined });
  }

  async #upload(): Promise<string> {
    const file = byId<HTMLInputElement>('upload-file').files?.[0];
    if (!file) throw new Error('choose an .onnx file');
    const r = await this.#client().uploadModel(
      value('upload-model'),
      value('upload-version'),
      new Uint8Array(await file.arrayBuffer()),
    );
    return `uploaded ${r.model}@${r.version} (sha256 ${r.sha256.slice(0, 12)}…)`;
  }

  async #alias(): Promise<string> {
    const r = await this.#client().setAlias(value('alias-model'), value('alias-name'), value('alias-version'));
    return `${r.model}/${r.alias} → ${r.version}`;
  }

  async #createTask(): Promise<string> {
    const file = byId<HTMLInputElement>('task-weights').files?.[0];
    const weights = file ? importOnnxWeights(mnistMlp, new Uint8Array(await file.arrayBuffer())) : undefined;
    const task = value('task-name');
    const enrollmentToken = `enroll-${crypto.randomUUID()}`;
    const dp = byId<HTMLInputElement>('task-dp').checked;
    await this.#client().createTask(
      mnistTaskBody(
        task,
        enrollmentToken,
        {
          rounds: number('task-rounds'),
          devicesPerRound: number('task-per-round'),
          minDevices: number('task-min'),
          stageSeconds: number('task-stage'),
          ...(dp && { privacy: { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5, epsilon: number('task-epsilon') } }),
        },
        weights,
      ),
    );
    localStorage.setItem('fedge.task', task);
    localStorage.setItem('fedge.enrollment', enrollmentToken);
    byId<HTMLInputElement>('train-task').value = task;
    byId<HTMLInputElement>('train-token').value = enrollmentToken;
    byId<HTMLInputElement>('watch-task').value = task;
    return `created task ${task}; devices enroll with token ${enrollmentToken} (filled in under “Help train”)`;
  }
}

export interface MnistTaskOptions {
  rounds: number;
  devicesPerRound: number;
  minDevices: number;
  stageSeconds: number;
  training?: CreateTaskRequest['training'];
  privacy?: CreateTaskRequest['privacy'];
  /** The model devices train (default: the MNIST MLP, 784-256-10). */
  spec?: ModelSpec;
}

/** POST /v1/tasks for a task on an MNIST spec (its own model, named as the task), from `weights` or Glorot. */
export function mnistTaskBody(
  task: string,
  enrollmentToken: string,
  o: MnistTaskOptions,
  weights?: NamedWeight[],
): CreateTaskRequest {
  const {
    training = { epochs: 2, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' },
    privacy,
    spec = mnistMlp,
    ...rounds
  } = o;
  return {
    task,
    model: task,
    spec,
    weights: toBase64(new Uint8Array(flattenWeights(spec, weights ?? glorotWeights(spec)).buffer)),
    ...rounds,
    training,
    serverOptimizer: { kind: 'fedavg' },
    update: { clip: 1, maxExamples: 100 },
    enrollmentToken,
    ...(privacy && { privacy }),
  };
}
