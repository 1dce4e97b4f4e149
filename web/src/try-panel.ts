/**
 * "Try a model": pick a model and version, draw a digit (or paste a message for a text model, or fill a form built
 * from any other model's metadata), and see the edge's answer and the device's (LocalModel: WebGPU or WASM) side by
 * side, with latency and where each ran; with the version's model card, or the task round that published it.
 */
import {
  type EdgeClient,
  LocalModel,
  type ModelMetadata,
  type ModelSummary,
  type TensorInput,
} from '../../client-sdk/index.ts';
import { DigitCanvas } from './digit-canvas.ts';
import { byId, el, errorText, fillSelect, say } from './dom.ts';
import {
  concreteShape,
  digitInput,
  formInputs,
  inputKind,
  labelsFor,
  preview,
  ranked,
  textInput,
} from './model-inputs.ts';

/** Where web/build.ts puts onnxruntime-web's WASM binaries (ORT_WASM_FILES). */
export const ORT_WASM_PATHS = '/assets/ort/';

/** A bundled model's card (models/<name>/card.json, copied by web/build.ts). */
interface ModelCard {
  data: string;
  training: { command: string; epochs: number; optimizer: string };
  fp32?: { file: string; bytes: number; sha256: string; heldOutAccuracy: number };
  int8?: { file: string; bytes: number; sha256: string; heldOutAccuracy: number };
  /** Each output's classes by index (e.g. the spam model's probabilities: [0] ham, [1] spam). */
  outputs?: Record<string, { labels: string[]; meaning?: string }>;
}

export class TryPanel {
  readonly #edge: EdgeClient;
  readonly #canvas: DigitCanvas;
  readonly #model = byId<HTMLSelectElement>('try-model');
  readonly #version = byId<HTMLSelectElement>('try-version');
  #meta: ModelMetadata | undefined;
  /** The edge's models and their versions/aliases, as of the last refresh (admin changes call refresh). */
  #models: ModelSummary[] = [];
  readonly #local = new Map<string, Promise<LocalModel>>();
  #samples: { x: number[][]; y: number[] } | undefined;
  #sample = 0;
  /** Classifications started; only the latest one's answer is shown (strokes start them while drawing). */
  #seq = 0;

  constructor(edge: EdgeClient) {
    this.#edge = edge;
    this.#canvas = new DigitCanvas(byId<HTMLCanvasElement>('try-canvas'));
    this.#canvas.onStroke = () => void this.classify();
    this.#model.addEventListener('change', () => void this.#pickModel());
    this.#version.addEventListener('change', () => void this.#pickVersion());
    byId('try-classify').addEventListener('click', () => void this.classify());
    byId('try-clear').addEventListener('click', () => {
      this.#canvas.clear();
      byId('try-results').replaceChildren();
    });
    byId('try-sample').addEventListener('click', () => void this.#showSample());
    byId('try-run').addEventListener('click', () => void this.classify());
  }

  #cards: Promise<Record<string, ModelCard>> | undefined;

  /**
   * What is known of this version: its model card (the bundled models': data, held-out accuracy, size, sha256, how it
   * was trained), or the task round that published it.
   */
  #card(model: string): Promise<ModelCard | undefined> {
    this.#cards ??= fetch('/assets/cards/index.json')
      .then((r) => r.json() as Promise<Record<string, ModelCard>>)
      .catch(() => ({}));
    return this.#cards.then((cards) => cards[model]);
  }

  /** The classes of a model's output by index: its card's (any version of a bundled model), else labelsFor's. */
  async #labels(meta: ModelMetadata, output: string, classes: number): Promise<string[]> {
    const labels = (await this.#card(meta.name))?.outputs?.[output]?.labels;
    return labels?.length === classes ? labels : labelsFor(meta, classes);
  }

  async #describe(meta: ModelMetadata): Promise<(Node | string)[]> {
    const card = await this.#card(meta.name);
    const build = card && [card.int8, card.fp32].find((b) => b?.sha256 === meta.parameters.sha256);
    if (card && build) {
      // Which output index is which class, where that is not just the index (the spam model: [1] is spam).
      const outputs = Object.entries(card.outputs ?? {}).filter(([, o]) => o.labels.some((l, i) => l !== String(i)));
      return [
        el('h3', { textContent: 'Model card' }),
        el('ul', {}, [
          el('li', { textContent: `data: ${card.data}` }),
          ...outputs.map(([name, o]) =>
            el('li', {
              className: 'outputs',
              textContent: `output: ${o.labels.map((l, i) => `${name}[${i}] = ${l}`).join(', ')}`,
            }),
          ),
          el('li', {}, [
            `held-out accuracy ${(build.heldOutAccuracy * 100).toFixed(2)} %; ${(build.bytes / 1024).toFixed(0)} KiB (${build.file}); sha256 `,
            el('code', { className: 'hash', textContent: meta.parameters.sha256 }),
          ]),
          el('li', {}, [
            'trained with ',
            el('code', { textContent: card.training.command }),
            ` (${card.training.epochs} epochs, ${card.training.optimizer})`,
          ]),
        ]),
      ];
    }
    const round = /^r(\d+)$/.exec(meta.parameters.version)?.[1];
    if (round) {
      const { tasks } = await this.#edge.tasks({ limit: 100 }).catch(() => ({ tasks: [] }));
      const task = tasks.find((t) => t.model === meta.name);
      if (task)
        return [
          el('p', {}, [
            `Published by round ${round} of the federated task `,
            el('a', { href: `?task=${encodeURIComponent(task.task)}#watch`, textContent: task.task }),
            ` (sha256 ${meta.parameters.sha256.slice(0, 12)}…).`,
          ]),
        ];
    }
    return [];
  }

  /** One field per input, from the model's metadata. */
  #fields(meta: ModelMetadata): void {
    byId('try-fields').replaceChildren(
      ...meta.inputs.map((m, i) => {
        const shape = concreteShape(m.shape);
        const n = shape.reduce((a, b) => a * b, 1);
        const field = el('textarea', {
          id: `try-field-${i}`,
          rows: 3,
          cols: 60,
          value:
            m.datatype === 'BYTES' ? Array(n).fill('text').join('\n') : n <= 64 ? Array(n).fill('0').join(', ') : '0',
        });
        return el('p', {}, [
          el('label', {
            htmlFor: field.id,
            textContent: `${m.name}: ${m.datatype} [${shape.join(', ')}]${m.shape.some((d) => d < 0) ? ` (declared [${m.shape.join(', ')}])` : ''}`,
          }),
          field,
        ]);
      }),
    );
  }

  async refresh(select?: { model: string; version?: string }): Promise<void> {
    const models = (this.#models = await this.#edge.models());
    fillSelect(
      this.#model,
      models.map((m) => ({ value: m.name, label: m.name })),
    );
    if (select) this.#model.value = select.model;
    else if (!this.#model.dataset.chosen) {
      // First visit: the model the edge serves by default.
      const ready = (await (await fetch(`${this.#edge.url}/v2/health/ready`)).json()) as { default_model?: string };
      if (ready.default_model && models.some((m) => m.name === ready.default_model))
        this.#model.value = ready.default_model;
      this.#model.dataset.chosen = 'true';
    }
    await this.#pickModel(select?.version);
  }

  async #pickModel(version?: string): Promise<void> {
    const m = this.#models.find((x) => x.name === this.#model.value);
    if (!m) return;
    const options = [
      ...Object.entries(m.aliases).map(([alias, v]) => ({ value: alias, label: `${alias} → ${v}` })),
      ...[...m.versions].reverse().map((v) => ({ value: v, label: v })),
    ];
    fillSelect(this.#version, options, false);
    this.#version.value = version ?? (m.aliases.latest ? 'latest' : options[0]!.value);
    await this.#pickVersion();
  }

  async #pickVersion(): Promise<void> {
    try {
      this.#meta = await this.#edge.model(this.#model.value, this.#version.value);
    } catch (e) {
      say('try-status', errorText(e), 'error');
      return;
    }
    const meta = this.#meta;
    // A language model writes rather than classifies: "Write with the model" is where it runs.
    const writes = meta.parameters.text_generation !== undefined;
    const kind = writes ? undefined : inputKind(meta);
    byId('try-digit').hidden = kind !== 'digit';
    byId('try-text').hidden = kind !== 'text';
    byId('try-generic').hidden = kind !== 'generic';
    byId('try-writes').hidden = !writes;
    if (kind === 'generic') this.#fields(meta);
    say(
      'try-status',
      `${meta.name} version ${meta.parameters.version} (sha256 ${meta.parameters.sha256.slice(0, 12)}…)`,
    );
    byId('try-results').replaceChildren();
    byId('try-card').replaceChildren();
    // A language model's card is in "Write with the model".
    const about = writes ? [] : await this.#describe(meta);
    if (this.#meta === meta) byId('try-card').replaceChildren(...about);
  }

  async samples(): Promise<{ x: number[][]; y: number[] }> {
    this.#samples ??= (await (await fetch('/assets/sample-digits.json')).json()) as { x: number[][]; y: number[] };
    return this.#samples;
  }

  async #showSample(): Promise<void> {
    const s = await this.samples();
    this.#canvas.show(s.x[this.#sample % s.x.length]!);
    this.#sample++;
    await this.classify();
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

  async classify(): Promise<void> {
    const seq = ++this.#seq;
    const meta = this.#meta;
    if (!meta || meta.parameters.text_generation) return;
    const kind = inputKind(meta);
    if (kind === 'digit' && this.#canvas.empty)
      return say('try-status', 'Draw a digit first (or press “Sample digit”).', 'error');
    let inputs: Record<string, TensorInput>;
    try {
      inputs =
        kind === 'digit'
          ? digitInput(meta, this.#canvas.toInput())
          : kind === 'text'
            ? textInput(meta, byId<HTMLTextAreaElement>('try-message').value)
            : formInputs(
                meta,
                meta.inputs.map((_, i) => byId<HTMLTextAreaElement>(`try-field-${i}`).value),
              );
    } catch (e) {
      return say('try-status', (e as Error).message, 'error');
    }
    const row = (
      where: string,
      r: { probabilities: ArrayLike<number>; ms: number; provider: string; output: string; labels: string[] } | Error,
    ) => {
      if (r instanceof Error)
        return el('tr', {}, [
          el('th', { scope: 'row', textContent: where }),
          el('td', { colSpan: 3, textContent: errorText(r), className: 'error' }),
        ]);
      // A classifier's answer is its best classes; any other model's, its first output's values.
      const [best, second] = ranked(r.probabilities, r.labels);
      const answer =
        kind === 'generic'
          ? `${r.output} ${preview(r.probabilities)}`
          : `${best!.label} (${(best!.p * 100).toFixed(1)} %)${second ? `, then ${second.label} (${(second.p * 100).toFixed(1)} %)` : ''}`;
      return el(
        'tr',
        {
          dataset: {
            where: where.toLowerCase(),
            prediction: kind === 'generic' ? preview(r.probabilities) : best!.label,
          },
        },
        [
          el('th', { scope: 'row', textContent: where }),
          el('td', { className: 'prediction', textContent: answer }),
          el('td', { textContent: `${r.ms.toFixed(1)} ms` }),
          el('td', { className: 'provider', textContent: r.provider }),
        ],
      );
    };
    const [edge, local] = await Promise.all([
      this.#edge
        .infer(meta.name, inputs, { version: meta.parameters.version })
        .then((r) => ({
          probabilities: Object.values(r.outputs)[0]!.data as Float32Array,
          output: Object.keys(r.outputs)[0]!,
          ms: r.ms,
          provider: `edge (${r.provider ?? '?'})`,
        }))
        .then(async (r) => ({ ...r, labels: await this.#labels(meta, r.output, r.probabilities.length) }))
        .catch((e: Error) => e),
      this.#localModel(meta)
        .then((m) => m.run(inputs))
        .then((r) => ({
          probabilities: Object.values(r.outputs)[0]!.data as Float32Array,
          output: Object.keys(r.outputs)[0]!,
          ms: r.ms,
          provider: r.ranOn,
        }))
        .then(async (r) => ({ ...r, labels: await this.#labels(meta, r.output, r.probabilities.length) }))
        .catch((e: Error) => e),
    ]);
    if (seq !== this.#seq) return; // a newer drawing is being classified
    byId('try-results').replaceChildren(row('Edge', edge), row('Device', local));
  }
}
