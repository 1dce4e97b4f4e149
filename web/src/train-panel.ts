/**
 * "Help train this model": the visitor's browser joins a federated task as a Participant — it trains on digits the
 * visitor draws and labels (or sample digits), under the device's privacy budget (IndexedDB ledger), and sends
 * only its SecAgg+-masked update. The device's signing identity stays in this browser (localStorage).
 */
import { type EdgeClient, IndexedDbLedgerStore, Participant, PrivacyLedger, type RoundOutcome } from '../../client-sdk/index.ts';
import { createIdentity, type DeviceIdentity } from '../../federated/secagg/client.ts';
import { fromBase64, toBase64 } from '../../federated/secagg/bytes.ts';
import { DigitCanvas } from './digit-canvas.ts';
import { ORT_WASM_PATHS } from './try-panel.ts';
import { byId, errorText, say } from './dom.ts';

const STAGES = ['checking-in', 'downloading', 'training', 'advertise-keys', 'share-keys', 'masked-input', 'unmask', 'done'] as const;

async function deviceIdentity(): Promise<DeviceIdentity> {
  const saved = localStorage.getItem('fedge.device');
  if (saved) {
    const { id, seed } = JSON.parse(saved) as { id: string; seed: string };
    return createIdentity(id, fromBase64(seed));
  }
  const identity = await createIdentity(`browser-${crypto.randomUUID().slice(0, 8)}`);
  localStorage.setItem('fedge.device', JSON.stringify({ id: identity.id, seed: toBase64(identity.seed) }));
  return identity;
}

export class TrainPanel {
  readonly #edge: EdgeClient;
  readonly #canvas = new DigitCanvas(byId<HTMLCanvasElement>('train-canvas'));
  readonly #x: Float32Array[] = [];
  readonly #y: number[] = [];
  #abort: AbortController | undefined;
  readonly #samples: () => Promise<{ x: number[][]; y: number[] }>;
  /** The last round's outcome (tests and the page read it). */
  last: RoundOutcome | undefined;

  constructor(edge: EdgeClient, samples: () => Promise<{ x: number[][]; y: number[] }>) {
    this.#edge = edge;
    this.#samples = samples;
    byId<HTMLInputElement>('train-task').value = new URL(location.href).searchParams.get('task') ?? localStorage.getItem('fedge.task') ?? '';
    byId<HTMLInputElement>('train-token').value = localStorage.getItem('fedge.enrollment') ?? '';
    byId('train-add').addEventListener('click', () => this.#addDrawing());
    byId('train-clear').addEventListener('click', () => this.#canvas.clear());
    byId('train-samples').addEventListener('click', () => void this.#addSamples());
    byId('train-join').addEventListener('click', () => void this.join());
    byId('train-cancel').addEventListener('click', () => this.#abort?.abort(new Error('cancelled on this device')));
    this.#count();
  }

  #count(): void {
    byId('train-count').textContent = `${this.#y.length} example${this.#y.length === 1 ? '' : 's'} on this device`;
  }

  #addDrawing(): void {
    if (this.#canvas.empty) return say('train-status', 'Draw a digit first.', 'error');
    this.#x.push(this.#canvas.toInput());
    this.#y.push(Number(byId<HTMLSelectElement>('train-label').value));
    this.#canvas.clear();
    this.#count();
  }

  async #addSamples(): Promise<void> {
    const s = await this.#samples();
    s.x.forEach((x, i) => (this.#x.push(Float32Array.from(x)), this.#y.push(s.y[i]!)));
    this.#count();
  }

  async #ledger(epsilon: number): Promise<PrivacyLedger> {
    return new PrivacyLedger(new IndexedDbLedgerStore('fedge-privacy'), { epsilon, delta: 1e-5 });
  }

  async join(): Promise<RoundOutcome | undefined> {
    const task = byId<HTMLInputElement>('train-task').value.trim();
    const token = byId<HTMLInputElement>('train-token').value.trim();
    if (!task) return void say('train-status', 'Enter the task to join.', 'error');
    if (!this.#y.length) return void say('train-status', 'Add a few labelled digits first.', 'error');
    const progress = byId<HTMLProgressElement>('train-progress');
    const join = byId<HTMLButtonElement>('train-join');
    join.disabled = true;
    this.#abort = new AbortController();
    try {
      const status = await this.#edge.task(task);
      const budget = status.privacy?.epsilon ?? 3;
      const ledger = await this.#ledger(budget);
      const source = `task:${task}`;
      const participant = new Participant({
        url: this.#edge.url, task, identity: await deviceIdentity(), ledger, source, backend: 'auto',
        // A task on a served model's head embeds the digits with that model's body first: ORT's WASM is an asset here.
        wasmPaths: ORT_WASM_PATHS,
        onProgress: ({ round, stage }) => {
          progress.value = STAGES.indexOf(stage) + 1;
          say('train-status', `round ${round}: ${stage.replace('-', ' ')}…`);
        },
      });
      if (token) await participant.enroll(token, this.#abort.signal);
      const n = this.#y.length;
      const x = new Float32Array(n * 784);
      this.#x.forEach((v, i) => x.set(v, i * 784));
      const outcome = await participant.joinRound({ x, y: this.#y.slice() }, { signal: this.#abort.signal }).finally(() => participant.release());
      this.last = outcome;
      const spent = await ledger.spent(source);
      byId('train-budget').textContent = status.privacy ? `ε spent ${spent.toFixed(2)} of ${budget} (δ 1e-5); ${(budget - spent).toFixed(2)} left` : 'this task trains without example-level DP';
      say('train-status', outcome.status === 'unmasked' ? `round ${outcome.round}: your masked update is in the sum — thank you` : `round ${outcome.round}: skipped (${outcome.reason})`, outcome.status === 'unmasked' ? 'ok' : 'error');
      progress.value = outcome.status === 'unmasked' ? STAGES.length : 0;
      return outcome;
    } catch (e) {
      say('train-status', errorText(e), 'error');
      progress.value = 0;
    } finally {
      join.disabled = false;
      this.#abort = undefined;
    }
  }
}
