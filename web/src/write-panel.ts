/**
 * "Write with the model": a prompt continued by a language model on the edge (EdgeClient.generateStream, SSE) and on
 * this device (LocalModel.generateStream: WebGPU or WASM, as LocalModel chooses) at the same time, side by side, each
 * piece of text shown as it arrives, with tokens per second and time to the first token. Both run the same tokenizer,
 * decode loop and sampling code, so greedy decoding (temperature 0) writes the same text on both sides: an indicator
 * says whether it did. Stop aborts both. Below, the model card: the version's metadata (vocabulary, context, layers)
 * and, for the bundled build, its card and pretraining report (models/<name>/card.json and pretrain-report.json, which
 * web/build.ts copies).
 */
import {
  type EdgeClient,
  type GenerateParameters,
  LocalModel,
  LocalModelError,
  type ModelMetadata,
  type RanOn,
} from '../../client-sdk/index.ts';
import { byId, el, errorText, fillSelect, say } from './dom.ts';
import { ORT_WASM_PATHS } from './try-panel.ts';

/** The language model the Worker bundles (functions/registry/default-models.ts), picked first when it is served. */
const DEFAULT_MODEL = 'fedge-gpt';

/** The most new tokens the edge writes by default (wrangler.toml FEDGE_MAX_NEW_TOKENS; a lower setting says so, 400). */
const EDGE_MAX_NEW_TOKENS = 256;

type Where = 'edge' | 'device';

/** How one side's generation ended. */
interface Outcome {
  state: 'done' | 'stopped' | 'error';
  text: string;
  /** ms from the request to the end (the device: from the start of the generation, once its model is loaded). */
  ms: number;
  /** ms to the first piece of text; undefined when none came. */
  firstMs?: number | undefined;
  /** Known when the side said (the edge's last event; always on the device). */
  completionTokens?: number | undefined;
  finishReason?: string | undefined;
}

/** Reads a card whose keys may still change: the first of `paths` (dotted) that holds a value of the wanted type. */
function pick(from: unknown, paths: string[], type: 'number'): number | undefined;
function pick(from: unknown, paths: string[], type: 'string'): string | undefined;
function pick(from: unknown, paths: string[], type: 'array'): unknown[] | undefined;
function pick(from: unknown, paths: string[], type: 'number' | 'string' | 'array'): unknown {
  for (const path of paths) {
    let v: unknown = from;
    for (const key of path.split('.'))
      v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
    if (type === 'array' ? Array.isArray(v) : typeof v === type && (type !== 'number' || Number.isFinite(v))) return v;
  }
  return undefined;
}

const thousands = (n: number) => n.toLocaleString('en-US');
const millions = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : thousands(n));

export class WritePanel {
  readonly #edge: EdgeClient;
  readonly #model = byId<HTMLSelectElement>('write-model');
  readonly #prompt = byId<HTMLTextAreaElement>('write-prompt');
  readonly #maxTokens = byId<HTMLInputElement>('write-max-tokens');
  readonly #temperature = byId<HTMLInputElement>('write-temperature');
  readonly #seed = byId<HTMLInputElement>('write-seed');
  readonly #generate = byId<HTMLButtonElement>('write-generate');
  readonly #stop = byId<HTMLButtonElement>('write-stop');
  readonly #match = byId('write-match');
  #meta: ModelMetadata | undefined;
  readonly #local = new Map<string, Promise<LocalModel>>();
  #bundled: Promise<[Record<string, unknown>, Record<string, unknown>]> | undefined;
  /** The running generation's; Stop aborts both sides with it. */
  #abort: AbortController | undefined;
  /** Generations finished (either way); the browser tests wait on it. */
  finished = 0;

  constructor(edge: EdgeClient) {
    this.#edge = edge;
    this.#generate.addEventListener('click', () => void this.generate());
    this.#stop.addEventListener('click', () => this.stop());
    this.#model.addEventListener('change', () => void this.#pickModel());
    // Ctrl+Enter (⌘+Enter) in the prompt writes, as in most chat boxes.
    this.#prompt.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !this.#abort) {
        e.preventDefault();
        void this.generate();
      }
    });
  }

  /** The models whose latest version can generate (the edge's /openai/v1/models), the bundled one first. */
  async refresh(): Promise<void> {
    if (this.#abort) return; // writing: the model in use stays (its select is disabled until then)
    try {
      const res = await fetch(`${this.#edge.url}/openai/v1/models`);
      if (!res.ok) throw new Error(`the edge answered ${res.status} for its language models`);
      const { data } = (await res.json()) as { data: { id: string }[] };
      const names = [...new Set(data.map((m) => m.id).filter((id) => !id.includes(':')))].sort((a, b) =>
        a === DEFAULT_MODEL ? -1 : b === DEFAULT_MODEL ? 1 : a.localeCompare(b),
      );
      fillSelect(
        this.#model,
        names.map((n) => ({ value: n, label: n })),
      );
      this.#generate.disabled = !names.length;
      if (!names.length) {
        say(
          'write-status',
          'The edge serves no model that can write text (upload a decoder packed with its tokenizer).',
        );
        return;
      }
      await this.#pickModel();
    } catch (e) {
      say('write-status', errorText(e), 'error');
    }
  }

  async #pickModel(): Promise<void> {
    const name = this.#model.value;
    this.#meta = undefined;
    this.#clearOutputs();
    byId('write-card').replaceChildren();
    try {
      const meta = await this.#edge.model(name);
      if (this.#model.value !== name) return;
      this.#meta = meta;
      const context = meta.parameters.text_generation?.contextLength;
      this.#maxTokens.max = String(Math.min(context ?? EDGE_MAX_NEW_TOKENS, EDGE_MAX_NEW_TOKENS));
      say('write-status', '');
      const card = await this.#card(meta);
      if (this.#meta === meta) byId('write-card').replaceChildren(...card);
    } catch (e) {
      say('write-status', errorText(e), 'error');
    }
  }

  /** The bundled model's card (models/<name>/card.json) and pretraining report (pretrain-report.json), as built. */
  #facts(model: string): Promise<{ card: unknown; report: unknown }> {
    const load = (file: string) =>
      fetch(`/assets/cards/${file}`)
        .then((r) => (r.ok ? (r.json() as Promise<Record<string, unknown>>) : {}))
        .catch(() => ({}) as Record<string, unknown>);
    this.#bundled ??= Promise.all([load('index.json'), load('reports.json')]);
    return this.#bundled.then(([cards, reports]) => ({ card: cards[model], report: reports[model] }));
  }

  /**
   * The model card: what the version is (its metadata), and — when it is the bundled build (its card's sha256) — what
   * its card and pretraining report say, read key by key, so one that lacks a key (or is still being written) shows
   * what it has. A version a federated task published (r<round>) is not the pretrained one.
   */
  async #card(meta: ModelMetadata): Promise<(Node | string)[]> {
    const gen = meta.parameters.text_generation;
    const { card, report } = await this.#facts(meta.name);
    const { sha256, version } = meta.parameters;
    const fromTask = /^r\d+$/.test(version);
    const builds = ['int8', 'fp32'].filter((b) => pick(card, [`${b}.sha256`], 'string') === sha256);
    const build = builds[0];
    // The bundled build: its card names these bytes. Without a card, a report (which names no bytes) is taken for
    // any version but a task's; with one, only when both come from the same run (the same command).
    const cardCommand = pick(card, ['pretraining.command', 'training.command'], 'string');
    const own = card !== undefined ? build !== undefined : report !== undefined && !fromTask;
    const r =
      own && (cardCommand === undefined || cardCommand === pick(report, ['command'], 'string')) ? report : undefined;
    const c = own ? card : undefined;
    const num = (paths: string[]) => pick(c, paths, 'number') ?? pick(r, paths, 'number');
    const items: (Node | string)[][] = [];
    items.push([`${meta.name} version ${version}; sha256 `, el('code', { className: 'hash', textContent: sha256 })]);

    const layers = gen?.layers ?? num(['spec.layers', 'architecture.layers']);
    const heads = num(['spec.heads', 'architecture.heads']);
    const width = num(['spec.embedDim', 'architecture.embedDim']);
    const params = pick(r, ['architecture.parameters'], 'number');
    const vocab = gen?.vocabSize ?? num(['spec.vocabSize', 'architecture.vocabSize']);
    const context = gen?.contextLength ?? num(['spec.contextLength', 'architecture.contextLength']);
    const shape = [
      layers && `${layers} layers`,
      heads && `${heads} attention heads`,
      width && `${width}-wide embeddings`,
      params && `${millions(params)} parameters`,
    ].filter(Boolean);
    const aboutVocab = [
      vocab && `vocabulary ${thousands(vocab)} tokens`,
      context && `context ${context} tokens (prompt and answer together)`,
    ].filter(Boolean);
    items.push([
      `A decoder-only transformer${shape.length ? `: ${shape.join(', ')}` : ''}${aboutVocab.map((x) => `; ${x}`).join('')}.`,
    ]);
    const tokenizer = pick(c, ['tokenizer'], 'string') ?? pick(r, ['tokenizer.type'], 'string');
    if (tokenizer) items.push([`Tokenizer: ${tokenizer}.`]);

    if (own) {
      // What it read: each source's words ("path (what it is)"), a package's data set by its name
      // (…/datasets-moby-dick/… → Moby-Dick), else the path; the card's full account behind a disclosure.
      const sources = (pick(r, ['corpus.sources'], 'array') ?? []).filter((x): x is string => typeof x === 'string');
      const named = sources.map(
        (x) =>
          /\(([^)]+)\)\s*$/.exec(x)?.[1] ??
          /datasets-([a-z0-9-]+)/.exec(x)?.[1]?.replace(/(^|-)([a-z])/g, (_, d, ch) => d + ch.toUpperCase()) ??
          x,
      );
      const trainTokens = pick(r, ['corpus.train.tokens'], 'number');
      const heldDocs = pick(r, ['corpus.heldout.documents'], 'number');
      const data = pick(c, ['data'], 'string');
      if (named.length || data)
        items.push([
          `Trained on ${named.length ? named.join('; ') : 'public-domain text'}${trainTokens ? ` — ${millions(trainTokens)} tokens` : ''}${heldDocs ? `; ${heldDocs} documents held out` : ''}.`,
          ...(data
            ? [
                el('details', {}, [
                  el('summary', { textContent: 'How the text was prepared and held out' }),
                  el('p', { className: 'note', textContent: data }),
                ]),
              ]
            : []),
        ]);

      // How well it predicts text it never saw: the served file (the card's measurement of these bytes), and the
      // float32 model at the end of pretraining (the report's, on the whole held-out stream).
      const measured = (perplexity?: number, top1?: number, tokens?: number) =>
        [
          perplexity !== undefined && `perplexity ${perplexity.toFixed(1)}`,
          top1 !== undefined && `next-token top-1 accuracy ${(top1 * 100).toFixed(2)} %`,
        ]
          .filter(Boolean)
          .join(', ') + (tokens ? ` on ${thousands(tokens)} held-out tokens` : '');
      const served = build && {
        perplexity: pick(c, [`${build}.heldOut.perplexity`], 'number'),
        top1: pick(c, [`${build}.heldOut.top1`], 'number'),
        tokens: pick(c, [`${build}.heldOut.tokens`], 'number'),
      };
      if (served && (served.perplexity !== undefined || served.top1 !== undefined))
        items.push([
          `Held out, this file (${build}): ${measured(served.perplexity, served.top1, served.tokens)}`,
          ...(pick(c, ['evaluatedWith'], 'string')
            ? [el('span', { className: 'note', textContent: ` (${pick(c, ['evaluatedWith'], 'string')})` })]
            : []),
          '.',
        ]);
      const f32 = ['pretraining.float32HeldOut', 'final'];
      const perplexity = num(f32.map((p) => `${p}.heldout_perplexity`));
      const top1 = num(f32.map((p) => `${p}.heldout_top1`));
      if (perplexity !== undefined || top1 !== undefined)
        items.push([
          `Held out, float32 at the end of pretraining: ${measured(perplexity, top1, num(f32.map((p) => `${p}.heldout_tokens`)))}`,
          '.',
        ]);

      const steps = pick(r, ['training.steps'], 'number');
      const seen = num(['pretraining.tokensSeen', 'training.tokens_seen']);
      const epochs = num(['pretraining.epochs', 'training.epochs']);
      const minutes = num(['pretraining.minutes', 'training.training_minutes']);
      const optimizer = pick(r, ['training.optimizer'], 'string');
      const facts = [
        seen && `${millions(seen)} tokens`,
        epochs && `${epochs} epochs`,
        minutes && `${minutes.toFixed(1)} min`,
        optimizer,
      ].filter(Boolean);
      if (steps || facts.length)
        items.push([
          `Pretrained${steps ? ` for ${thousands(steps)} steps` : ''}${facts.length ? ` (${facts.join(', ')})` : ''}.`,
        ]);
      const command = cardCommand ?? pick(r, ['command'], 'string');
      if (command) items.push(['Made with ', el('code', { className: 'hash', textContent: command })]);
    } else if (fromTask) {
      items.push([
        `Published by round ${version.slice(1)} of a federated task: fine-tuned on devices, so the bundled model's card does not describe it.`,
      ]);
    } else if (card !== undefined) {
      items.push([`Not the bundled build of ${meta.name} (its card names other bytes): uploaded, so no card.`]);
    }
    return [
      el('h3', { textContent: 'Model card' }),
      el(
        'ul',
        {},
        items.map((x) => el('li', {}, x)),
      ),
    ];
  }

  #parameters(): GenerateParameters | string {
    const maxTokens = Number(this.#maxTokens.value);
    const max = Number(this.#maxTokens.max) || EDGE_MAX_NEW_TOKENS;
    if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > max)
      return `Max tokens: a whole number from 1 to ${max}.`;
    const temperature = Number(this.#temperature.value || '0');
    if (!Number.isFinite(temperature) || temperature < 0 || temperature > 2)
      return 'Temperature: a number from 0 (greedy) to 2.';
    const p: GenerateParameters = { max_tokens: maxTokens, temperature };
    if (this.#seed.value.trim()) {
      const seed = Number(this.#seed.value);
      if (!Number.isInteger(seed) || seed < 0) return 'Seed: a whole number, 0 or more (or empty for a random one).';
      p.seed = seed;
    }
    return p;
  }

  /** The side's elements: its text (the prompt, then the completion piece by piece), where it ran, its numbers. */
  #side(where: Where) {
    const box = byId(`write-${where}`);
    return {
      box,
      echo: box.querySelector<HTMLElement>('.write-echo')!,
      completion: box.querySelector<HTMLElement>('.write-completion')!,
      ranOn: box.querySelector<HTMLElement>('.write-ranon')!,
      stats: box.querySelector<HTMLElement>('.write-stats')!,
    };
  }

  #clearOutputs(): void {
    for (const where of ['edge', 'device'] as const) {
      const s = this.#side(where);
      s.echo.textContent = '';
      s.completion.replaceChildren();
      s.stats.textContent = '';
      s.stats.classList.remove('error');
      s.box.dataset.state = 'idle';
      delete s.box.dataset.tokensPerSecond;
    }
    this.#showMatch('', '');
  }

  #showMatch(kind: '' | 'same' | 'differs' | 'so-far', text: string): void {
    this.#match.dataset.match = kind;
    this.#match.textContent = text;
  }

  /** Compares the two texts so far; while both still write, a text that is the start of the other is "same so far". */
  #compare(final: boolean): void {
    const a = this.#side('edge').completion.textContent ?? '',
      b = this.#side('device').completion.textContent ?? '';
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    const diverged = i < a.length && i < b.length;
    if (final && a === b) this.#showMatch('same', '✓ Same text on the edge and on this device');
    else if (!final && !diverged) this.#showMatch('so-far', a || b ? 'Same text so far…' : '');
    else
      this.#showMatch(
        'differs',
        diverged ? `≠ The texts differ from character ${i + 1}` : '≠ The texts differ: one stopped before the other',
      );
  }

  stop(): void {
    this.#abort?.abort(new DOMException('stopped from the page', 'AbortError'));
  }

  async generate(): Promise<void> {
    if (this.#abort) return;
    const meta = this.#meta;
    if (!meta) return say('write-status', 'No model to write with yet.', 'error');
    const prompt = this.#prompt.value;
    if (!prompt.trim()) return say('write-status', 'Write a prompt first.', 'error');
    const parameters = this.#parameters();
    if (typeof parameters === 'string') return say('write-status', parameters, 'error');

    const abort = (this.#abort = new AbortController());
    this.#running(true);
    this.#clearOutputs();
    for (const where of ['edge', 'device'] as const) {
      const s = this.#side(where);
      s.echo.textContent = prompt;
      s.box.dataset.state = 'running';
    }

    const greedy = parameters.temperature === 0;
    say(
      'write-status',
      `Writing up to ${parameters.max_tokens} tokens ${greedy ? 'greedily' : `at temperature ${parameters.temperature}`} on the edge and on this device…`,
    );
    const [edge, device] = await Promise.all([
      this.#run('edge', abort.signal, () => this.#edgeStream(meta, prompt, parameters, abort.signal)),
      this.#run('device', abort.signal, (startClock) =>
        this.#deviceStream(meta, prompt, parameters, abort.signal, startClock),
      ),
    ]);
    this.#abort = undefined;
    this.#running(false);

    if (edge.state === 'done' && device.state === 'done') this.#compare(true);
    else if (edge.state === 'error' || device.state === 'error') this.#showMatch('', '');
    else if (this.#match.dataset.match === 'so-far')
      this.#showMatch('so-far', 'Stopped: the same text as far as both got');
    else this.#compare(false);
    const failed = [edge.state === 'error' && 'the edge', device.state === 'error' && 'this device'].filter(Boolean);
    const same = this.#match.dataset.match === 'same';
    const seeded = greedy || parameters.seed !== undefined;
    if (failed.length) say('write-status', `Could not write on ${failed.join(' or ')} (see below).`, 'error');
    else if (edge.state === 'stopped' || device.state === 'stopped') say('write-status', 'Stopped.');
    else if (same) say('write-status', 'Done: the same text from the edge and this device.', 'ok');
    else
      say(
        'write-status',
        seeded
          ? `Done, but the texts differ: ${greedy ? 'greedy decoding' : 'the same seed'} should agree, so the two engines computed different numbers.`
          : 'Done: different texts, as sampling without a seed draws differently on each side.',
      );
    this.finished++;
  }

  /** Generate while running (hidden), Stop otherwise; focus follows the button the visitor was on. */
  #running(on: boolean): void {
    const focusedGenerate = document.activeElement === this.#generate,
      focusedStop = document.activeElement === this.#stop;
    this.#generate.hidden = on;
    this.#stop.hidden = !on;
    this.#model.disabled = on;
    if (on && focusedGenerate) this.#stop.focus();
    if (!on && (focusedStop || document.activeElement === document.body)) this.#generate.focus();
  }

  async *#edgeStream(
    meta: ModelMetadata,
    prompt: string,
    parameters: GenerateParameters,
    signal: AbortSignal,
  ): AsyncGenerator<string, Partial<Outcome>> {
    const details = yield* this.#edge.generateStream(meta.name, prompt, parameters, {
      version: meta.parameters.version,
      signal,
    });
    return { completionTokens: details?.completion_tokens, finishReason: details?.finish_reason };
  }

  async *#deviceStream(
    meta: ModelMetadata,
    prompt: string,
    parameters: GenerateParameters,
    signal: AbortSignal,
    startClock: () => void,
  ): AsyncGenerator<string, Partial<Outcome>> {
    const side = this.#side('device');
    side.ranOn.textContent = 'loading the model into this browser…';
    const loading = performance.now();
    // Stop answers at once while the model loads (the load goes on, cached for the next Generate).
    const local = await Promise.race([
      this.#localModel(meta),
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
    const loaded = performance.now() - loading;
    side.ranOn.textContent = `${this.#engine(local.provider)} in this browser${
      loaded > 50
        ? ` · model ${local.fromCache ? 'loaded from its cache' : 'downloaded and loaded'} in ${(loaded / 1000).toFixed(1)} s`
        : ''
    }`;
    if (!local.canGenerate)
      throw new LocalModelError(`${meta.name} cannot write on this device: its file carries no tokenizer`);
    startClock();
    const r = yield* local.generateStream(prompt, parameters, { signal });
    return {
      completionTokens: r.completionTokens,
      finishReason: r.finishReason,
      state: r.finishReason === 'aborted' ? 'stopped' : 'done',
    };
  }

  #engine(ranOn: RanOn): string {
    return ranOn === 'webgpu' ? 'WebGPU' : ranOn === 'wasm' ? 'WASM' : 'the edge';
  }

  #localModel(meta: ModelMetadata): Promise<LocalModel> {
    const key = `${meta.name}@${meta.parameters.version}`;
    let m = this.#local.get(key);
    if (!m) {
      m = LocalModel.load({
        client: this.#edge,
        model: meta.name,
        version: meta.parameters.version,
        wasmPaths: ORT_WASM_PATHS,
      });
      m.catch(() => this.#local.delete(key));
      this.#local.set(key, m);
    }
    return m;
  }

  /**
   * Runs one side: each piece of text appended as it arrives (one text node a piece), then its numbers — completion
   * tokens over seconds, and the time to the first token — or the error in words.
   */
  async #run(
    where: Where,
    signal: AbortSignal,
    stream: (startClock: () => void) => AsyncGenerator<string, Partial<Outcome>>,
  ): Promise<Outcome> {
    const side = this.#side(where);
    let started = performance.now();
    // The device's clock starts once its model is loaded: loading is not writing (its line says how long it took).
    const startClock = () => {
      started = performance.now();
    };
    let firstMs: number | undefined;
    let end: Partial<Outcome> = {};
    let state: Outcome['state'] = 'done';
    try {
      const it = stream(startClock);
      for (;;) {
        const next = await it.next();
        if (next.done) {
          end = next.value;
          break;
        }
        firstMs ??= performance.now() - started;
        side.completion.append(next.value);
        side.stats.textContent = `first token after ${Math.round(firstMs)} ms…`;
        this.#compare(false);
      }
      state = end.state ?? 'done';
    } catch (e) {
      if (signal.aborted) state = 'stopped';
      else {
        state = 'error';
        side.stats.textContent = errorText(e);
        side.stats.classList.add('error');
      }
    }
    const ms = performance.now() - started;
    const outcome: Outcome = {
      state,
      text: side.completion.textContent ?? '',
      ms,
      firstMs,
      completionTokens: end.completionTokens,
      finishReason: end.finishReason,
    };
    side.box.dataset.state = state;
    if (state !== 'error') this.#stats(where, outcome);
    return outcome;
  }

  #stats(where: Where, o: Outcome): void {
    const side = this.#side(where);
    const parts: string[] = [];
    if (o.completionTokens !== undefined) {
      const perSecond = o.completionTokens / (o.ms / 1000);
      side.box.dataset.tokensPerSecond = perSecond.toFixed(1);
      parts.push(`${o.completionTokens} tokens in ${(o.ms / 1000).toFixed(2)} s`, `${perSecond.toFixed(1)} tokens/s`);
    } else parts.push(`${o.text.length} characters in ${(o.ms / 1000).toFixed(2)} s`);
    if (o.firstMs !== undefined) parts.push(`first token after ${Math.round(o.firstMs)} ms`);
    const why =
      o.state === 'stopped'
        ? 'stopped'
        : o.finishReason === 'length'
          ? 'hit the length limit (max tokens or the context)'
          : o.finishReason === 'stop'
            ? 'the model ended its text'
            : o.finishReason;
    if (why) parts.push(why);
    side.stats.textContent = parts.join(' · ');
  }
}
