/**
 * The example app: a page on its own origin using Fedge's SDK the way an app would.
 * - EdgeClient: the edge's model answers what the user draws.
 * - LocalModel: the same model runs on this device (WebGPU, else WASM), from ONNX bytes cached by sha256.
 * - Participant: the user's labelled drawings fine-tune the model in a federated task — trained here under DP-SGD,
 *   charged to this device's privacy ledger (IndexedDB), sent only as a SecAgg+-masked update.
 * Query parameters: `edge` (the edge's URL), `model`, `task`, `token`, `device` (a slot name, so several tabs can be
 * several devices).
 */
import {
  EdgeClient,
  EdgeError,
  IndexedDbLedgerStore,
  LocalModel,
  Participant,
  PrivacyLedger,
  type RoundOutcome,
} from 'fedge/client';
import { createIdentity, type DeviceIdentity } from 'fedge/federated';

const params = new URL(location.href).searchParams;
const EDGE = params.get('edge') ?? import.meta.env.VITE_FEDGE_URL ?? 'http://127.0.0.1:8787';
const MODEL = params.get('model') ?? 'mnist-mlp';
const SLOT = params.get('device') ?? 'default';
/** This device's own limit on what its data may spend, per task (ε at δ = 1e-5). */
const BUDGET = { epsilon: 10, delta: 1e-5 };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const say = (id: string, text: string) => ($(id).textContent = text);
const errorText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

const edge = new EdgeClient({ url: EDGE });
const ledger = new PrivacyLedger(new IndexedDbLedgerStore(`fedge-example-${SLOT}`), BUDGET);
let local: LocalModel | undefined;
let inputName = 'input';
const examples: { x: number[]; y: number[] } = { x: [], y: [] };

/** This device's signing identity, kept in localStorage: a device enrolls once per task and stays itself. */
async function identity(): Promise<DeviceIdentity> {
  const key = `fedge-example-identity-${SLOT}`;
  const stored = localStorage.getItem(key);
  if (stored) {
    const { id, seed } = JSON.parse(stored) as { id: string; seed: number[] };
    return createIdentity(id, new Uint8Array(seed));
  }
  const id = `web-${crypto.randomUUID().slice(0, 8)}`;
  const made = await createIdentity(id);
  localStorage.setItem(key, JSON.stringify({ id, seed: Array.from(made.seed) }));
  return made;
}

async function connect(): Promise<void> {
  say('edge-url', EDGE);
  try {
    const meta = await edge.model(MODEL);
    inputName = meta.inputs[0]!.name;
    say('edge-status', `${MODEL} version ${meta.parameters.version} is served. Loading it on this device…`);
    local = await LocalModel.load({ client: edge, model: MODEL, wasmPaths: '/ort/' });
    say(
      'edge-status',
      `${MODEL} version ${local.version} is served by the edge and runs on this device too (${local.provider}).`,
    );
  } catch (e) {
    say('edge-status', `The edge cannot be used from this page: ${errorText(e)}`);
  }
}

// ---- drawing -----------------------------------------------------------------------------------------------

const pad = $<HTMLCanvasElement>('pad');
const ink = pad.getContext('2d')!;
function clearPad(): void {
  ink.fillStyle = '#fff';
  ink.fillRect(0, 0, pad.width, pad.height);
}
let drawing = false;
const at = (e: PointerEvent) => {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height] as const;
};
pad.addEventListener('pointerdown', (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  ink.beginPath();
  ink.moveTo(...at(e));
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  ink.lineTo(...at(e));
  ink.strokeStyle = '#000';
  ink.lineWidth = 22;
  ink.lineCap = 'round';
  ink.lineJoin = 'round';
  ink.stroke();
});
pad.addEventListener('pointerup', () => (drawing = false));

/** The drawing as MNIST's 784 values: 28 × 28, ink bright (1) on black (0). */
function digit(): Float32Array {
  const small = document.createElement('canvas');
  small.width = small.height = 28;
  const g = small.getContext('2d')!;
  g.drawImage(pad, 0, 0, 28, 28);
  const { data } = g.getImageData(0, 0, 28, 28);
  return Float32Array.from({ length: 784 }, (_, i) => 1 - data[4 * i]! / 255);
}

const top = (p: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  return `${best} (${(100 * p[best]!).toFixed(1)} %)`;
};

async function classify(): Promise<void> {
  const x = digit();
  try {
    const onEdge = await edge.infer(MODEL, { [inputName]: { data: x, shape: [1, 784] } });
    const text = [`The edge says ${top(Object.values(onEdge.outputs)[0]!.data as Float32Array)}`];
    if (local) {
      const here = await local.run({ [inputName]: { data: x, shape: [1, 784] } });
      text.push(`this device (${here.ranOn}) says ${top(Object.values(here.outputs)[0]!.data as Float32Array)}`);
    }
    say('prediction', `${text.join('; ')}.`);
  } catch (e) {
    say('prediction', errorText(e));
  }
}

// ---- learning ----------------------------------------------------------------------------------------------

/** Adds labelled digits (784 values each) to this device's examples. The page's own button adds one drawing. */
function addExamples(x: ArrayLike<number>, y: ArrayLike<number>): number {
  for (let i = 0; i < x.length; i++) examples.x.push(x[i]!);
  for (let i = 0; i < y.length; i++) examples.y.push(y[i]!);
  say(
    'examples',
    `${examples.y.length} example${examples.y.length === 1 ? '' : 's'} on this device, never sent anywhere.`,
  );
  return examples.y.length;
}

async function showBudget(task: string): Promise<void> {
  const spent = await ledger.spent(`task:${task}`);
  say(
    'budget',
    `Privacy spent on task ${task}: ε = ${spent.toFixed(2)} of this device's budget of ${BUDGET.epsilon} (δ = ${BUDGET.delta}).`,
  );
}

async function join(): Promise<RoundOutcome | undefined> {
  const task = $<HTMLInputElement>('task').value.trim();
  const token = $<HTMLInputElement>('token').value.trim();
  if (!task || !token) return void say('round', 'Give the task and its enrollment token.');
  if (examples.y.length === 0) return void say('round', 'Add a few examples first.');
  const button = $<HTMLButtonElement>('join');
  button.disabled = true;
  try {
    const participant = new Participant({
      url: EDGE,
      task,
      identity: await identity(),
      ledger,
      wasmPaths: '/ort/',
      onProgress: ({ round, stage }) => say('round', `Round ${round}: ${stage}…`),
    });
    await participant.enroll(token);
    const outcome = await participant.joinRound({ x: Float32Array.from(examples.x), y: examples.y });
    await participant.release();
    if (outcome.status === 'unmasked') {
      say('round', `Round ${outcome.round}: this device's masked update (${outcome.maskedBytes} bytes) is in the sum…`);
      // The round publishes once the last device has unmasked: wait for it (a minute at most).
      let status = await edge.task(task);
      const ended = () => status.history.find((h) => h.round === outcome.round)?.status !== 'running';
      for (let i = 0; i < 120 && !ended(); i++) {
        await new Promise((r) => setTimeout(r, 500));
        status = await edge.task(task);
      }
      const version = status.history.find((h) => h.round === outcome.round)?.version;
      say(
        'round',
        `Round ${outcome.round}: this device's masked update (${outcome.maskedBytes} bytes) is in the sum${version ? `; the edge now serves ${status.model} version ${version}` : ''}.`,
      );
    } else say('round', `Round ${outcome.round} went on without this device: ${outcome.reason}`);
    await showBudget(task);
    return outcome;
  } catch (e) {
    say('round', e instanceof EdgeError ? `The edge refused: ${e.message}` : errorText(e));
    return undefined;
  } finally {
    button.disabled = false;
  }
}

const labels = $<HTMLSelectElement>('label');
for (let d = 0; d <= 9; d++) labels.add(new Option(String(d), String(d)));
$('classify').addEventListener('click', () => void classify());
$('clear').addEventListener('click', clearPad);
$('add').addEventListener('click', () => (addExamples(digit(), [Number(labels.value)]), clearPad()));
$('join').addEventListener('click', () => void join());
$<HTMLInputElement>('task').value = params.get('task') ?? '';
$<HTMLInputElement>('token').value = params.get('token') ?? '';
clearPad();

// What an app's own code (and this example's test) calls: its data in, a round out.
Object.assign(globalThis, { fedgeExample: { ready: connect(), addExamples, join } });
