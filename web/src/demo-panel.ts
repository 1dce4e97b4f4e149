/**
 * "A live federation": one click creates a task on an MNIST softmax model (Glorot-initialised, DP-SGD on every device) and
 * starts simulated devices in a Web Worker (demo-worker.ts: the SDK's Participants doing real SecAgg+ rounds), so
 * Watch shows rounds publishing, accuracy changing and ε accumulating within a minute or so. Rounds take one device
 * more than the simulation has, so the visitor's browser can join as that device (Help train is filled in).
 */
import { EdgeClient } from '../../client-sdk/index.ts';
import type { DemoEvent, DemoStart } from './demo-worker.ts';
import { mnistTaskBody } from './admin-panel.ts';
import type { ModelSpec } from '../../federated/model/model-spec.ts';
import { mnistMlp } from '../../models/specs.ts';
import { byId, el, errorText, say } from './dom.ts';

/** The simulation: SIMULATED devices of DIGITS_PER_DEVICE training digits each (web/build.ts writes them). */
export const SIMULATED = 5;
/**
 * Softmax regression on the pixels (7,850 weights): DP-SGD's noise grows with the parameter count, and 60 digits a
 * device cannot outweigh it in the 784-256-10 MLP (203,530) in a few rounds; this one learns visibly from round 1.
 */
const DEMO_SPEC: ModelSpec = {
  ...mnistMlp,
  name: 'mnist-softmax',
  layers: [{ type: 'dense', units: 10, activation: 'softmax' }],
};
const DEMO = {
  rounds: 8,
  devicesPerRound: SIMULATED + 1,
  minDevices: 3,
  stageSeconds: 4,
  spec: DEMO_SPEC,
  // The demo's devices live in the visitor's tab: once it closes, check-in waits two minutes, then the task pauses.
  idleSeconds: 120,
  // Small local data, so a looser budget than a real task would take: the ε the page shows is what these settings
  // spend, to watch it grow, not a recommendation.
  training: { epochs: 1, batchSize: 20, learningRate: 0.5, optimizer: 'sgd' as const },
  privacy: { l2NormClip: 1, noiseMultiplier: 1.2, delta: 1e-5, epsilon: 30 },
};

export class DemoPanel {
  readonly #url: string;
  readonly #started: (task: string, token: string) => void;
  #worker: Worker | undefined;
  /** Rounds the simulated devices finished (tests wait on it). */
  rounds = 0;

  constructor(url: string, started: (task: string, token: string) => void) {
    this.#url = url;
    this.#started = started;
    byId('demo-start').addEventListener('click', () => void this.start());
  }

  async start(): Promise<string | undefined> {
    const button = byId<HTMLButtonElement>('demo-start');
    button.disabled = true;
    this.#worker?.terminate();
    byId('demo-log').replaceChildren();
    this.rounds = 0;
    try {
      const token = byId<HTMLInputElement>('admin-token').value.trim();
      if (!token) throw new Error('the demo creates a task, which takes the admin token: enter it under Admin');
      const task = `demo-${Date.now().toString(36)}`;
      const enrollmentToken = `enroll-${crypto.randomUUID()}`;
      say('demo-status', `creating task ${task}…`);
      const { training, privacy, ...rounds } = DEMO;
      await new EdgeClient({ url: this.#url, adminToken: token }).createTask(
        mnistTaskBody(task, enrollmentToken, { ...rounds, training, privacy }),
      );
      const [digits, labels] = await Promise.all([
        fetch('/assets/demo-digits.bin').then((r) => r.arrayBuffer()),
        fetch('/assets/demo-labels.json').then((r) => r.json() as Promise<number[]>),
      ]);
      this.#started(task, enrollmentToken);
      const worker = new Worker('/assets/demo-worker.js', { type: 'module' });
      this.#worker = worker;
      const stages = new Map<number, string>();
      worker.addEventListener('message', (e: MessageEvent<DemoEvent>) => {
        const m = e.data;
        if (m.kind === 'stage') {
          stages.set(m.device, m.stage);
          const counts = new Map<string, number>();
          for (const s of stages.values()) counts.set(s, (counts.get(s) ?? 0) + 1);
          say(
            'demo-status',
            `${task}, round ${m.round}: ${[...counts].map(([s, n]) => `${n} ${s.replace('-', ' ')}`).join(', ')} (${SIMULATED} simulated devices; each round also takes one more)`,
          );
        } else if (m.kind === 'round') {
          this.rounds++;
          const inSum = m.outcomes.filter((o) => o.status === 'unmasked').length;
          const skipped = m.outcomes.filter((o) => o.status === 'skipped').map((o) => o.reason);
          const spent = Math.max(...m.outcomes.map((o) => o.spent ?? 0));
          byId('demo-log').append(
            el('li', {
              textContent: `round ${m.round}: ${inSum} of ${SIMULATED} simulated devices' masked updates in the sum; ε spent per device up to ${spent.toFixed(2)} of ${privacy.epsilon}${skipped.length ? `; skipped: ${[...new Set(skipped)].join('; ')}` : ''}`,
            }),
          );
        } else if (m.kind === 'finished') {
          say('demo-status', `${task}: finished — every round is listed under Watch`, 'ok');
          button.disabled = false;
        } else {
          say('demo-status', `the simulated devices stopped: ${m.message}`, 'error');
          button.disabled = false;
        }
      });
      worker.addEventListener(
        'error',
        (e) => (say('demo-status', `the simulated devices stopped: ${e.message}`, 'error'), (button.disabled = false)),
      );
      const start: DemoStart = {
        url: this.#url,
        task,
        token: enrollmentToken,
        devices: SIMULATED,
        epsilon: privacy.epsilon,
        digits,
        labels,
      };
      worker.postMessage(start, [digits]);
      say('demo-status', `${task}: ${SIMULATED} simulated devices are enrolling…`);
      return task;
    } catch (e) {
      say('demo-status', errorText(e), 'error');
      button.disabled = false;
      return undefined;
    }
  }
}
