/**
 * "Help train the language model" (issue 33, point 5): next-word suggestions as the visitor types — the three
 * likeliest next words (next-words.ts) from the edge's model (OIP infer) and from this device's (LocalModel on the same
 * file), side by side — and Help train: the browser fine-tunes fedge-gpt's LoRA adapters on the visitor's sentences
 * under its privacy budget (the IndexedDB ledger, as the classifier's Help train) and joins a round of a
 * language-model task as a Participant, sending only its SecAgg+-masked update. Then the device's column suggests
 * from the visitor's own fine-tuned copy (the LanguageModelTrainer's forward pass: LocalModel runs files, and this
 * copy never becomes one) and, once the round publishes, the edge's from the task's new version. "Start a demo"
 * creates such a task and runs two simulated devices in a Web Worker (lm-demo-worker.ts), so the visitor's browser is
 * the round's third device.
 */
import {
  EdgeClient,
  IndexedDbLedgerStore,
  LocalModel,
  Participant,
  PrivacyLedger,
  type RoundOutcome,
  type TaskStatus,
  type TensorInput,
} from '../../client-sdk/index.ts';
import { readLanguageBase, textWindows } from '../../client-sdk/federated/lm-round.ts';
import { LanguageModelTrainer } from '../../client-sdk/training/lm-trainer.ts';
import { readMetadataProps } from '../../federated/model/onnx-metadata.ts';
import { type TextTokenizer, loadTokenizer } from '../../federated/text/tokenizer.ts';
import { byId, el, errorText, say } from './dom.ts';
import type { LmDemoEvent, LmDemoStart } from './lm-demo-worker.ts';
import { type NextLogits, type Vocabulary, nextWords, vocabularyOf } from './next-words.ts';
import { MOVED_ON, STAGES, STAGE_WORDS, deviceIdentity } from './train-panel.ts';
import { useTfjsWasm } from './tfjs-wasm.ts';
import { ORT_WASM_PATHS } from './try-panel.ts';

/** The language model the Worker bundles, which the flow suggests from and fine-tunes. */
const BASE_MODEL = 'fedge-gpt';

/** Simulated devices in the demo: with the visitor's browser, the 3 a round needs. */
export const LM_SIMULATED = 2;

/** The demo task: one round of LoRA fine-tuning under DP-SGD on 3 devices (test/e2e/lm-tasks.test.ts's settings). */
const LM_DEMO = {
  trainable: 'lora:4',
  rounds: 1,
  devicesPerRound: LM_SIMULATED + 1,
  minDevices: LM_SIMULATED + 1,
  secagg: { neighbours: 2, threshold: 2 },
  // Each stage after check-in waits up to a minute: a browser trains a LoRA step in seconds on WASM.
  stageSeconds: 60,
  update: { clip: 1, maxExamples: 100 },
  training: { epochs: 1, batchSize: 4, learningRate: 0.01, optimizer: 'adam' as const },
  // Small local data: a loose budget, to watch ε being spent, not a recommendation.
  privacy: { l2NormClip: 1, noiseMultiplier: 0.8, delta: 1e-5, epsilon: 10 },
};

/** The visitor's own copy: a few epochs over their sentences (it never leaves the device, so no DP is needed). */
const PERSONAL = {
  trainable: 'lora:4' as const,
  epochs: 3,
  batchSize: 4,
  learningRate: 0.01,
  optimizer: 'adam' as const,
};

/** The flow's stages: the round's (train-panel.ts), then the visitor's own copy, then the published model. */
const FLOW = [...STAGES, 'personal', 'published'] as const;

type Where = 'edge' | 'device';

/** The graph's inputs as the metadata states them (input_ids, attention_mask, position_ids, past_key_values.*). */
type Inputs = { name: string; shape: number[] }[];

/**
 * One prefill over equal-length rows of token ids, past length 0: the feeds a decoder Fedge serves takes (Optimum's
 * with-past layout; decoder-layout.ts).
 */
function decoderFeeds(rows: number[][], inputs: Inputs): Record<string, TensorInput> {
  const b = rows.length,
    l = rows[0]!.length;
  const feeds: Record<string, TensorInput> = {};
  for (const t of inputs) {
    if (t.name === 'input_ids')
      feeds[t.name] = { datatype: 'INT64', shape: [b, l], data: BigInt64Array.from(rows.flat(), BigInt) };
    else if (t.name === 'attention_mask')
      feeds[t.name] = { datatype: 'INT64', shape: [b, l], data: new BigInt64Array(b * l).fill(1n) };
    else if (t.name === 'position_ids')
      feeds[t.name] = {
        datatype: 'INT64',
        shape: [b, l],
        data: BigInt64Array.from({ length: b * l }, (_, i) => BigInt(i % l)),
      };
    else if (t.name.startsWith('past_key_values.'))
      feeds[t.name] = { datatype: 'FP32', shape: [b, t.shape[1]!, 0, t.shape[3]!], data: new Float32Array(0) };
    else if (t.name === 'use_cache_branch') feeds[t.name] = { datatype: 'BOOL', shape: [1], data: Uint8Array.of(0) };
  }
  return feeds;
}

/** The last position's row of logits [batch, length, vocab] for each row. */
function lastRows(data: Float32Array, batch: number, length: number, vocab: number): Float32Array[] {
  return Array.from({ length: batch }, (_, b) =>
    data.subarray((b * length + length - 1) * vocab, (b * length + length) * vocab),
  );
}

/** The base model as this page holds it: its bytes (fine-tuned from), tokenizer, graph inputs and LocalModel. */
interface Base {
  version: string;
  sha256: string;
  bytes: Uint8Array;
  tokenizer: TextTokenizer;
  vocab: Vocabulary;
  inputs: Inputs;
  local: LocalModel;
}

/** A column's model: what it is called, and its next-token logits. */
interface Source {
  label: string;
  next: NextLogits;
}

export class LmPanel {
  readonly #edge: EdgeClient;
  readonly #typing = byId<HTMLTextAreaElement>('lm-typing');
  #base: Promise<Base> | undefined;
  /** Set once the round published (the task's model and version) and once the visitor's own copy is trained. */
  #edgeModel: { model: string; version: string } | undefined;
  #personal: LanguageModelTrainer | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #asked = 0;
  #abort: AbortController | undefined;
  #worker: Worker | undefined;
  /** Suggestions shown (both columns filled) and the last outcome: the browser tests wait on them. */
  suggested = 0;
  last: RoundOutcome | undefined;
  published: string | undefined;

  constructor(edge: EdgeClient) {
    this.#edge = edge;
    this.#typing.addEventListener('input', () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.suggest(), 300);
    });
    byId('lm-demo-start').addEventListener('click', () => void this.startDemo());
    byId('lm-join').addEventListener('click', () => void this.join());
    byId('lm-cancel').addEventListener('click', () => this.#abort?.abort(new Error('cancelled on this device')));
  }

  /** The served base: downloaded once (its tokenizer is in the file), loaded into LocalModel (WebGPU or WASM). */
  #loadBase(): Promise<Base> {
    this.#base ??= (async () => {
      const meta = await this.#edge.model(BASE_MODEL);
      const { bytes, version, sha256 } = await this.#edge.modelBytes(BASE_MODEL, meta.parameters.version);
      const json = readMetadataProps(bytes)['tokenizer.json'];
      if (!json) throw new Error(`${BASE_MODEL} carries no tokenizer`);
      const tokenizer = loadTokenizer(json);
      const local = await LocalModel.load({ bytes, model: BASE_MODEL, version, wasmPaths: ORT_WASM_PATHS });
      return {
        version,
        sha256,
        bytes,
        tokenizer,
        vocab: vocabularyOf(json, (ids) => tokenizer.decode(ids)),
        inputs: meta.inputs,
        local,
      };
    })();
    this.#base.catch(() => (this.#base = undefined));
    return this.#base;
  }

  #source(where: Where, base: Base): Source {
    if (where === 'edge') {
      const { model, version } = this.#edgeModel ?? { model: BASE_MODEL, version: base.version };
      return {
        label: this.#edgeModel
          ? `${model} ${version}: published by the round · Cloudflare Worker (OIP infer)`
          : `${model} ${version}, pretrained · Cloudflare Worker (OIP infer)`,
        next: async (rows) => {
          const r = await this.#edge.infer(model, decoderFeeds(rows, base.inputs), { version, outputs: ['logits'] });
          const [b, l, v] = r.outputs.logits!.shape as [number, number, number];
          return lastRows(r.outputs.logits!.data as Float32Array, b, l, v);
        },
      };
    }
    const personal = this.#personal;
    if (personal)
      return {
        label: `your own fine-tuned copy of ${BASE_MODEL} (never sent) · TensorFlow.js WASM, the trainer's forward pass`,
        next: async (rows) => {
          const out = personal.logits(rows);
          const v = personal.spec.vocabSize;
          return lastRows(out, rows.length, rows[0]!.length, v);
        },
      };
    return {
      label: `${BASE_MODEL} ${base.version}, pretrained · ${base.local.provider === 'webgpu' ? 'WebGPU' : 'WASM'} in this browser (LocalModel)`,
      next: async (rows) => {
        const r = await base.local.run(decoderFeeds(rows, base.inputs));
        const [b, l, v] = r.outputs.logits!.shape as [number, number, number];
        return lastRows(r.outputs.logits!.data as Float32Array, b, l, v);
      },
    };
  }

  /**
   * The next words after the text typed so far, in both columns — once a word is finished (the text ends in a space
   * or punctuation); a newer keystroke's answer replaces an older one.
   */
  async suggest(): Promise<void> {
    const text = this.#typing.value;
    if (!text.trim() || !/[\s\p{P}]$/u.test(text)) return;
    const asked = ++this.#asked;
    try {
      if (!this.#base) say('lm-suggest-status', 'loading the model into this browser…');
      const base = await this.#loadBase();
      const ids = base.tokenizer.encode(text.trimEnd());
      say('lm-suggest-status', '');
      await Promise.all((['edge', 'device'] as const).map((w) => this.#fill(w, base, ids, asked)));
      if (asked === this.#asked) this.suggested++;
    } catch (e) {
      say('lm-suggest-status', errorText(e), 'error');
    }
  }

  async #fill(where: Where, base: Base, ids: number[], asked: number): Promise<void> {
    const box = byId(`lm-suggest-${where}`);
    const source = this.#source(where, base);
    box.dataset.state = 'running';
    const started = performance.now();
    try {
      const words = await nextWords(ids, source.next, base.vocab);
      if (asked !== this.#asked) return;
      box.querySelector('.lm-model')!.textContent = source.label;
      box
        .querySelector('.lm-words')!
        .replaceChildren(
          ...words.map((w) =>
            el('li', {}, [
              el('button', { type: 'button', className: 'lm-word', textContent: w, onclick: () => this.#take(w) }),
            ]),
          ),
        );
      box.querySelector('.write-stats')!.textContent = `${Math.round(performance.now() - started)} ms`;
      box.dataset.state = 'done';
    } catch (e) {
      if (asked !== this.#asked) return;
      box.querySelector('.write-stats')!.textContent = errorText(e);
      box.dataset.state = 'error';
    }
  }

  /** A picked suggestion: the word and a space appended, and the next words asked for. */
  #take(word: string): void {
    const text = this.#typing.value;
    this.#typing.value = `${text}${/\s$/.test(text) || !text ? '' : ' '}${word} `;
    this.#typing.focus();
    void this.suggest();
  }

  /** Creates a language-model task and starts the simulated devices; fills in the task and token to join. */
  async startDemo(): Promise<string | undefined> {
    const button = byId<HTMLButtonElement>('lm-demo-start');
    button.disabled = true;
    this.#worker?.terminate();
    try {
      const adminToken = byId<HTMLInputElement>('admin-token').value.trim();
      if (!adminToken) throw new Error('the demo creates a task, which takes the admin token: enter it under Admin');
      const task = `lm-demo-${Date.now().toString(36)}`;
      const enrollmentToken = `enroll-${crypto.randomUUID()}`;
      say('lm-demo-status', `creating task ${task}…`);
      const meta = await this.#edge.model(BASE_MODEL);
      const { privacy, ...rest } = LM_DEMO;
      await new EdgeClient({ url: this.#edge.url, adminToken }).createTask({
        task,
        model: task,
        base: { model: BASE_MODEL, version: meta.parameters.version },
        ...rest,
        privacy,
        enrollmentToken,
      } as Parameters<EdgeClient['createTask']>[0]);
      const texts = (await fetch('/assets/lm-demo-texts.json').then((r) => r.json())) as string[][];
      byId<HTMLInputElement>('lm-task').value = task;
      byId<HTMLInputElement>('lm-token').value = enrollmentToken;
      const worker = new Worker('/assets/lm-demo-worker.js', { type: 'module' });
      this.#worker = worker;
      const stages = new Map<number, string>();
      const stopped = (message: string) => {
        say('lm-demo-status', `the simulated devices stopped: ${message}`, 'error');
        button.disabled = false;
      };
      worker.addEventListener('message', (e: MessageEvent<LmDemoEvent>) => {
        const m = e.data;
        if (m.kind === 'stage') {
          stages.set(m.device, m.stage);
          const waiting = [...stages.values()].every((s) => s === 'advertise-keys' || s === 'share-keys');
          say(
            'lm-demo-status',
            `${task}, round ${m.round}: ${[...stages.values()].map((s) => STAGE_WORDS[s]?.split(' (')[0] ?? s).join('; ')} (${LM_SIMULATED} simulated devices)${waiting ? ' — waiting for your browser: press Help train' : ''}`,
          );
        } else if (m.kind === 'round') {
          const inSum = m.outcomes.filter((o) => o.status === 'unmasked').length;
          say(
            'lm-demo-status',
            `${task}, round ${m.round}: ${inSum} of ${LM_SIMULATED} simulated devices' masked updates in the sum`,
            'ok',
          );
        } else if (m.kind === 'finished') button.disabled = false;
        else stopped(m.message);
      });
      worker.addEventListener('error', (e) => stopped(e.message));
      const start: LmDemoStart = {
        url: this.#edge.url,
        task,
        token: enrollmentToken,
        epsilon: privacy.epsilon,
        texts: texts.slice(0, LM_SIMULATED),
      };
      worker.postMessage(start);
      say('lm-demo-status', `${task}: ${LM_SIMULATED} simulated devices are enrolling…`);
      return task;
    } catch (e) {
      say('lm-demo-status', errorText(e), 'error');
      button.disabled = false;
      return undefined;
    }
  }

  #stage(stage: (typeof FLOW)[number], text: string, kind: 'info' | 'ok' | 'error' = 'info'): void {
    byId<HTMLProgressElement>('lm-progress').value = FLOW.indexOf(stage) + 1;
    say('lm-status', text, kind);
  }

  #fact(text: string): void {
    byId('lm-facts').append(el('li', { textContent: text }));
  }

  /**
   * Help train: joins the task's round with the visitor's sentences (trained on WASM under DP, charged to this
   * device's ledger), then fine-tunes the visitor's own copy for the device's column, then waits for the round to
   * publish and moves the edge's column to the new version.
   */
  async join(): Promise<RoundOutcome | undefined> {
    const task = byId<HTMLInputElement>('lm-task').value.trim();
    const token = byId<HTMLInputElement>('lm-token').value.trim();
    const texts = byId<HTMLTextAreaElement>('lm-texts')
      .value.split(/\n\s*\n/)
      .map((t) => t.trim())
      .filter(Boolean);
    if (!task) return void say('lm-status', 'Enter the task to join (or start a demo).', 'error');
    if (!texts.length) return void say('lm-status', 'Write a few sentences first.', 'error');
    const join = byId<HTMLButtonElement>('lm-join');
    join.disabled = true;
    byId('lm-facts').replaceChildren();
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    try {
      const status = await this.#edge.task(task);
      if (!status.adapter) throw new Error(`task ${task} does not fine-tune a language model`);
      const budget = status.privacy?.epsilon ?? 3;
      const ledger = new PrivacyLedger(new IndexedDbLedgerStore('fedge-privacy'), { epsilon: budget, delta: 1e-5 });
      const source = `task:${task}`;
      await useTfjsWasm();
      const participant = new Participant({
        url: this.#edge.url,
        task,
        identity: await deviceIdentity(),
        ledger,
        source,
        backend: 'wasm',
        onProgress: ({ round, stage }) =>
          this.#stage(
            stage,
            `round ${round}: ${stage === 'training' ? 'fine-tuning the LoRA adapters on your sentences under DP-SGD (your text stays here)' : (STAGE_WORDS[stage] ?? stage)}…`,
          ),
      });
      if (token) await participant.enroll(token, signal);
      let outcome: RoundOutcome;
      try {
        // A round that moved on while this device trained: joined again, up to twice (each try is charged).
        for (let tries = 1; ; tries++) {
          outcome = await participant.joinRound({ texts }, { signal });
          if (outcome.status !== 'skipped' || !MOVED_ON.test(outcome.reason ?? '') || tries === 3) break;
          say('lm-status', `round ${outcome.round} started without this device; joining the next round…`);
        }
      } finally {
        await participant.release();
      }
      this.last = outcome;
      const spent = await ledger.spent(source);
      this.#fact(
        status.privacy
          ? `ε spent ${spent.toFixed(2)} of ${budget} (δ ${status.privacy.delta}); ${(budget - spent).toFixed(2)} left`
          : 'this task trains without example-level DP',
      );
      if (outcome.status !== 'unmasked') {
        this.#stage('checking-in', `round ${outcome.round}: skipped (${outcome.reason})`, 'error');
        return outcome;
      }
      this.#fact(
        `your masked update: ${((outcome.maskedBytes ?? 0) / 1024).toFixed(1)} KiB — unreadable without the other devices' masks; ${status.adapter.length.toLocaleString('en-US')} LoRA values trained on ${outcome.examples} windows of your text`,
      );
      this.#stage('personal', `round ${outcome.round}: your update is in the sum. Fine-tuning your own copy…`);
      await this.#personalize(texts);
      void this.suggest();
      const version = await this.#published(task, outcome.round, signal);
      this.#edgeModel = { model: status.model, version };
      this.published = version;
      this.#stage(
        'published',
        `round ${outcome.round} published ${status.model} ${version}: the edge now suggests from it, and this device from your own copy. Your sentences never left this page. Thank you`,
        'ok',
      );
      void this.suggest();
      return outcome;
    } catch (e) {
      say('lm-status', errorText(e), 'error');
      byId<HTMLProgressElement>('lm-progress').value = 0;
    } finally {
      join.disabled = false;
      this.#abort = undefined;
    }
  }

  /** The visitor's own copy: the base fine-tuned on their sentences here; the device's column suggests from it. */
  async #personalize(texts: string[]): Promise<void> {
    const base = await this.#loadBase();
    const language = readLanguageBase(base.bytes, base.sha256);
    const windows = textWindows(language, { texts });
    const trainer = await LanguageModelTrainer.create({
      spec: language.spec,
      weights: language.weights,
      trainable: PERSONAL.trainable,
      backend: 'wasm',
    });
    const before = trainer.evaluate(windows);
    const fit = await trainer.fit(windows, PERSONAL);
    const after = trainer.evaluate(windows);
    this.#personal?.dispose();
    this.#personal = trainer;
    this.#fact(
      `your own copy: ${fit.steps} steps in ${fit.seconds.toFixed(1)} s; perplexity on your sentences ${before.perplexity.toFixed(1)} → ${after.perplexity.toFixed(1)} (it stays on this device)`,
    );
  }

  /** The version the round published, once it has (the task's status, polled). */
  async #published(task: string, round: number, signal: AbortSignal): Promise<string> {
    for (let waited = 0; ; waited += 1000) {
      const s: TaskStatus = await this.#edge.task(task, { signal });
      const h = s.history.find((r) => r.round === round);
      if (h?.status === 'published' && h.version) return h.version;
      if (h?.status === 'abandoned') throw new Error(`round ${round} was abandoned: ${h.reason ?? 'no reason given'}`);
      if (waited > 120_000) throw new Error(`round ${round} has not published after two minutes`);
      this.#stage('done', `round ${round}: the edge is unmasking the sum and publishing…`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
