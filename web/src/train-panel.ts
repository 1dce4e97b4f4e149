/**
 * "Help train this model": the visitor's browser joins a federated task as a Participant — it trains on digits the
 * visitor draws and labels (or sample digits), under the device's privacy budget (IndexedDB ledger), and sends
 * only its SecAgg+-masked update. The device's signing identity stays in this browser (localStorage).
 */
import {
  type EdgeClient,
  IndexedDbLedgerStore,
  Participant,
  PrivacyLedger,
  type RoundOutcome,
} from '../../client-sdk/index.ts';
import { createIdentity, type DeviceIdentity } from '../../federated/secagg/client.ts';
import { fromBase64, toBase64 } from '../../federated/bytes.ts';
import { DigitCanvas } from './digit-canvas.ts';
import { ORT_WASM_PATHS } from './try-panel.ts';
import { byId, errorText, say } from './dom.ts';

/** What each stage means for this device: what it does, and what leaves it. */
export const STAGE_WORDS: Record<string, string> = {
  'checking-in': 'checking in',
  downloading: 'downloading the global model',
  training: 'training on this device (your digits stay here)',
  'advertise-keys': 'sending its public keys',
  'share-keys': 'waiting for the roster, then sending encrypted key shares to its neighbours',
  'masked-input': 'sending its masked update (the edge cannot read it alone)',
  unmask: 'helping unmask the sum',
  done: 'done',
};

/** A skipped round that had moved on when this device's keys arrived (the edge: "message for round …, this is round …"). */
export const MOVED_ON = /this is round /;

export const STAGES = [
  'checking-in',
  'downloading',
  'training',
  'advertise-keys',
  'share-keys',
  'masked-input',
  'unmask',
  'done',
] as const;

export async function deviceIdentity(): Promise<DeviceIdentity> {
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
    byId<HTMLInputElement>('train-task').value =
      new URL(location.href).searchParams.get('task') ?? localStorage.getItem('fedge.task') ?? '';
    byId<HTMLInputElement>('train-token').value = localStorage.getItem('fedge.enrollment') ?? '';
    byId('train-add').addEventListener('click', () => this.#addDrawing());
    byId('train-clear').addEventListener('click', () => this.#canvas.clear());
    byId('train-samples').addEventListener('click', () => void this.#addSamples());
    byId('train-join').addEventListener('click', () => void this.join());
    byId('train-cancel').addEventListener('click', () => this.#abort?.abort(new Error('cancelled on this device')));
    this.#count();
  }

  /** Fills in the task to join and its enrollment token (the demo and the admin form do). */
  use(task: string, token: string): void {
    byId<HTMLInputElement>('train-task').value = task;
    byId<HTMLInputElement>('train-token').value = token;
  }

  /**
   * While this device waits at check-in, what the round waits for, from the task's status: how many devices have
   * checked in and how many more the round needs before it can start.
   */
  async #waiting(task: string, round: number): Promise<string | undefined> {
    const s = await this.#edge.task(task);
    const h = s.history.find((r) => r.round === round);
    if (s.round !== round || s.stage !== 'advertise-keys' || !h) return undefined;
    const more = s.minDevices - h.advertised;
    return more > 0
      ? `round ${round}: waiting for ${more} more device${more === 1 ? '' : 's'} (${h.advertised} checked in; a round needs ${s.minDevices} and takes up to ${s.devicesPerRound})`
      : `round ${round}: ${h.advertised} devices checked in; the round starts when ${s.devicesPerRound} have, or a few seconds after the last`;
  }

  #count(): void {
    byId('train-count').textContent = `${this.#y.length} example${this.#y.length === 1 ? '' : 's'} on this device`;
  }

  #addDrawing(): void {
    if (this.#canvas.empty) {
      say('train-status', 'Draw a digit first.', 'error');
      return;
    }
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
    let current: { round: number; stage: string } | undefined;
    let waiter: ReturnType<typeof setInterval> | undefined;
    try {
      const status = await this.#edge.task(task);
      const budget = status.privacy?.epsilon ?? 3;
      const ledger = await this.#ledger(budget);
      const source = `task:${task}`;
      const participant = new Participant({
        url: this.#edge.url,
        task,
        identity: await deviceIdentity(),
        ledger,
        source,
        backend: 'auto',
        // A task on a served model's head embeds the digits with that model's body first: ORT's WASM is an asset here.
        wasmPaths: ORT_WASM_PATHS,
        onProgress: ({ round, stage }) => {
          progress.value = STAGES.indexOf(stage) + 1;
          current = { round, stage };
          say('train-status', `round ${round}: ${STAGE_WORDS[stage] ?? stage}…`);
        },
      });
      if (token) await participant.enroll(token, this.#abort.signal);
      // At check-in the page asks the task what the round is waiting for.
      // (Having sent its keys, the device waits for the roster: its stage reads share-keys while the task's is still
      // advertise-keys.)
      const atCheckIn = () => current?.stage === 'advertise-keys' || current?.stage === 'share-keys';
      waiter = setInterval(() => {
        if (!atCheckIn()) return;
        const round = current!.round;
        void this.#waiting(task, round).then(
          (m) => m && atCheckIn() && say('train-status', m),
          () => undefined,
        );
      }, 1500);
      const n = this.#y.length;
      const x = new Float32Array(n * 784);
      this.#x.forEach((v, i) => x.set(v, i * 784));
      const examples = { x, y: this.#y.slice() };
      let outcome: RoundOutcome;
      try {
        // A round whose check-in closed while this device was still downloading and training (a slow device, or a
        // round that waited only seconds for it) takes its keys no more: say so in words and join the next round,
        // up to twice. Each try trains, so each is charged to the budget shown below.
        for (let tries = 1; ; tries++) {
          outcome = await participant.joinRound(examples, { signal: this.#abort.signal });
          if (outcome.status !== 'skipped' || !MOVED_ON.test(outcome.reason ?? '') || tries === 3) break;
          say(
            'train-status',
            `round ${outcome.round} started without this device (it was still training); joining the next round…`,
          );
        }
      } finally {
        await participant.release();
      }
      this.last = outcome;
      const spent = await ledger.spent(source);
      byId('train-budget').textContent = status.privacy
        ? `ε spent ${spent.toFixed(2)} of ${budget} (δ 1e-5); ${(budget - spent).toFixed(2)} left`
        : 'this task trains without example-level DP';
      say(
        'train-status',
        outcome.status === 'unmasked'
          ? `round ${outcome.round}: your masked update (${((outcome.maskedBytes ?? 0) / 1024).toFixed(1)} KiB, unreadable without the other devices' masks) is in the sum — your ${n} digits never left this page. Thank you`
          : `round ${outcome.round}: skipped (${outcome.reason})`,
        outcome.status === 'unmasked' ? 'ok' : 'error',
      );
      progress.value = outcome.status === 'unmasked' ? STAGES.length : 0;
      return outcome;
    } catch (e) {
      say('train-status', errorText(e), 'error');
      progress.value = 0;
    } finally {
      clearInterval(waiter);
      join.disabled = false;
      this.#abort = undefined;
    }
  }
}
