/**
 * Admin actions behind the admin token (kept in this tab's sessionStorage only): upload a model version, move an
 * alias, create a federated task on the MNIST MLP (initial weights: Glorot-uniform, or an fp32 ONNX file).
 */
import { EdgeClient } from '../../client-sdk/index.ts';
import { flattenWeights } from '../../federated/model/flat-weights.ts';
import { parameterShapes } from '../../federated/model/model-spec.ts';
import { importOnnxWeights } from '../../federated/model/onnx-import.ts';
import { toBase64 } from '../../federated/secagg/bytes.ts';
import { randomWords } from '../../federated/secagg/primitives.ts';
import { mnistMlp } from '../../models/specs.ts';
import { byId, errorText, say } from './dom.ts';

const value = (id: string) => byId<HTMLInputElement>(id).value.trim();
const number = (id: string) => Number(byId<HTMLInputElement>(id).value);

/** Glorot-uniform kernels, zero biases (what tfjs's dense layers start from). */
function glorotWeights() {
  return parameterShapes(mnistMlp).map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 1) return { name, shape, values: new Float32Array(n) };
    const limit = Math.sqrt(6 / (shape[0]! + shape[1]!));
    // randomWords fills in 64 KiB calls: one getRandomValues call over a 784×256 kernel throws QuotaExceededError.
    const r = randomWords(n);
    return { name, shape, values: Float32Array.from(r, (u) => (u / 2 ** 32 * 2 - 1) * limit) };
  });
}

export class AdminPanel {
  readonly #url: string;
  readonly #changed: () => void;

  constructor(url: string, onChange: () => void) {
    this.#url = url;
    this.#changed = onChange;
    byId<HTMLInputElement>('admin-token').value = sessionStorage.getItem('fedge.admin') ?? '';
    byId('admin-token').addEventListener('change', () => sessionStorage.setItem('fedge.admin', value('admin-token')));
    const form = (id: string, action: () => Promise<string>) => byId(id).addEventListener('submit', (e) => {
      e.preventDefault();
      say('admin-status', 'working…');
      action().then((m) => (say('admin-status', m, 'ok'), this.#changed()), (err) => say('admin-status', errorText(err), 'error'));
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
    const r = await this.#client().uploadModel(value('upload-model'), value('upload-version'), new Uint8Array(await file.arrayBuffer()));
    return `uploaded ${r.model}@${r.version} (sha256 ${r.sha256.slice(0, 12)}…)`;
  }

  async #alias(): Promise<string> {
    const r = await this.#client().setAlias(value('alias-model'), value('alias-name'), value('alias-version'));
    return `${r.model}/${r.alias} → ${r.version}`;
  }

  async #createTask(): Promise<string> {
    const file = byId<HTMLInputElement>('task-weights').files?.[0];
    const weights = file ? importOnnxWeights(mnistMlp, new Uint8Array(await file.arrayBuffer())) : glorotWeights();
    const task = value('task-name');
    const enrollmentToken = `enroll-${crypto.randomUUID()}`;
    const dp = byId<HTMLInputElement>('task-dp').checked;
    await this.#client().createTask({
      task, model: task, spec: mnistMlp, weights: toBase64(new Uint8Array(flattenWeights(mnistMlp, weights).buffer)),
      rounds: number('task-rounds'), devicesPerRound: number('task-per-round'), minDevices: number('task-min'), stageSeconds: number('task-stage'),
      training: { epochs: 2, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' }, serverOptimizer: { kind: 'fedavg' },
      update: { clip: 1, maxExamples: 100 }, enrollmentToken,
      ...(dp && { privacy: { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5, epsilon: number('task-epsilon') } }),
    });
    localStorage.setItem('fedge.task', task);
    localStorage.setItem('fedge.enrollment', enrollmentToken);
    byId<HTMLInputElement>('train-task').value = task;
    byId<HTMLInputElement>('train-token').value = enrollmentToken;
    byId<HTMLInputElement>('watch-task').value = task;
    return `created task ${task}; devices enroll with token ${enrollmentToken} (filled in under “Help train”)`;
  }
}
