/**
 * "Watch a task": rounds, participants, dropouts, accuracy and ε per round as charts (uPlot), refreshed every few
 * seconds, and the versions the task published with a button to try each.
 */
import uPlot from 'uplot';
import type { EdgeClient, TaskStatus } from '../../client-sdk/index.ts';
import { accuracy } from '../../federated/model/accuracy.ts';
import { byId, el, errorText, say } from './dom.ts';

type Series = { label: string; stroke: string; dash?: number[]; values: (r: TaskStatus['history'][number]) => number | null };

const CHARTS: { id: string; title: string; y: string; series: Series[] }[] = [
  { id: 'chart-accuracy', title: 'Accuracy of each published model on 300 held-out digits', y: '%', series: [
    { label: 'accuracy', stroke: '#1f77b4', values: (r) => (r.accuracy === undefined ? null : r.accuracy * 100) },
  ] },
  { id: 'chart-devices', title: 'Devices per round', y: 'devices', series: [
    { label: 'checked in', stroke: '#2ca02c', values: (r) => r.advertised },
    { label: 'in the sum', stroke: '#1f77b4', values: (r) => r.submitted },
    { label: 'dropped out', stroke: '#d62728', values: (r) => r.dropouts },
  ] },
  { id: 'chart-privacy', title: 'Privacy spent', y: 'ε', series: [
    { label: 'max device ε (example-level)', stroke: '#9467bd', values: (r) => r.epsilon ?? null },
    { label: 'client-level ε (distributed DP)', stroke: '#ff7f0e', values: (r) => r.clientEpsilon ?? null },
  ] },
];

/** As wide as a phone allows (the section's padding aside), at most 440 px. */
const chartWidth = () => Math.max(260, Math.min(440, document.documentElement.clientWidth - 64));

export class WatchPanel {
  readonly #edge: EdgeClient;
  readonly #plots = new Map<string, uPlot>();
  readonly #plotKeys = new Map<string, string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #onTry: (model: string, version: string) => void;
  /** Rounds drawn so far (tests wait on it). */
  rendered = 0;

  constructor(edge: EdgeClient, onTry: (model: string, version: string) => void) {
    this.#edge = edge;
    this.#onTry = onTry;
    // uPlot draws at a fixed size: follow the window (a phone turned, a desktop window narrowed).
    addEventListener('resize', () => {
      for (const plot of this.#plots.values()) plot.setSize({ width: chartWidth(), height: 240 });
    });
    byId<HTMLInputElement>('watch-task').value = new URL(location.href).searchParams.get('task') ?? localStorage.getItem('fedge.task') ?? '';
    byId('watch-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.watch(byId<HTMLInputElement>('watch-task').value.trim());
    });
  }

  /** Every task on the edge, each a link that watches it (`?task=`), refreshed while the page is open. */
  listTasks(): void {
    const tick = async () => {
      try {
        const { tasks } = await this.#edge.tasks({ limit: 100 });
        byId('task-list').replaceChildren(...(tasks.length ? tasks.map((t) => el('tr', {}, [
          el('td', {}, [el('a', { href: `?task=${encodeURIComponent(t.task)}#watch`, textContent: t.task, onclick: (e: MouseEvent) => (e.preventDefault(), history.replaceState(null, '', `?task=${encodeURIComponent(t.task)}#watch`), this.watch(t.task)) })]),
          el('td', { textContent: t.model }), el('td', { textContent: `${t.round} of ${t.rounds}` }), el('td', { textContent: t.status === 'finished' ? 'finished' : t.stage }),
          el('td', { textContent: String(t.enrolledDevices) }), el('td', { textContent: String(t.published) }),
        ])) : [el('tr', {}, [el('td', { colSpan: 6, textContent: 'No tasks yet: start the demo above, or create one under Admin.' })])]));
      } catch (e) {
        say('watch-status', errorText(e), 'error');
      }
    };
    void tick();
    clearInterval(this.#listTimer);
    this.#listTimer = setInterval(() => void tick(), 5000);
  }

  #listTimer: ReturnType<typeof setInterval> | undefined;

  watch(task: string): void {
    clearInterval(this.#timer);
    if (!task) return;
    byId<HTMLInputElement>('watch-task').value = task;
    const tick = () => void this.#refresh(task);
    tick();
    this.#timer = setInterval(tick, 3000);
  }

  #heldOut: Promise<{ x: Float32Array; y: number[] }> | undefined;
  readonly #measured = new Map<string, number>();

  /**
   * Accuracy of a published version on the page's 300 held-out MNIST digits, through the edge (once per version),
   * when the operator has not reported one (POST /v1/tasks/{task}/evaluations); undefined for non-digit models.
   */
  async #accuracy(model: string, version: string): Promise<number | undefined> {
    const key = `${model}@${version}`;
    if (this.#measured.has(key)) return this.#measured.get(key);
    const meta = await this.#edge.model(model, version);
    const rest = meta.inputs[0]!.shape.slice(1);
    if (rest.join('x') !== '784' && rest.join('x') !== '28x28x1') return undefined;
    this.#heldOut ??= Promise.all([fetch('/assets/heldout-digits.bin').then((r) => r.arrayBuffer()), fetch('/assets/heldout-labels.json').then((r) => r.json() as Promise<number[]>)])
      .then(([x, y]) => ({ x: new Float32Array(x), y }));
    const { x, y } = await this.#heldOut;
    const r = await this.#edge.infer(model, { [meta.inputs[0]!.name]: { data: x, shape: [y.length, ...rest] } }, { version });
    const measured = accuracy(Object.values(r.outputs)[0]!.data as Float32Array, y);
    this.#measured.set(key, measured);
    return measured;
  }

  async #refresh(task: string): Promise<void> {
    let s: TaskStatus;
    try {
      s = await this.#edge.task(task);
      for (const h of s.history) if (h.version && h.accuracy === undefined) h.accuracy = await this.#accuracy(s.model, h.version);
    } catch (e) {
      say('watch-status', errorText(e), 'error');
      return;
    }
    const done = s.history.filter((h) => h.status !== 'running');
    // A task on a served model's head says which model and which of its layers the devices train.
    const trains = s.base ? `; devices train the ${s.base.trainable} of ${s.base.model}@${s.base.version} (${s.base.layers.join(', ')})` : '';
    say('watch-status', `${s.task}: ${s.status}, round ${s.round} of ${s.rounds} (${s.stage}); ${s.enrolledDevices} devices enrolled, ${s.devicesPerRound} per round; ${done.filter((h) => h.status === 'published').length} published, ${done.filter((h) => h.status === 'abandoned').length} abandoned${trains}`);
    const rounds = s.history.map((h) => h.round);
    // A task on a served model's head has a baseline: the base model itself, before any round (same 300 digits).
    const baseline = s.base ? await this.#accuracy(s.base.model, s.base.version).catch(() => undefined) : undefined;
    for (const chart of CHARTS) {
      const c = chart.id === 'chart-accuracy' && baseline !== undefined
        ? { ...chart, series: [...chart.series, { label: `${s.base!.model}@${s.base!.version} before federation`, stroke: '#7f7f7f', dash: [6, 4], values: () => baseline * 100 }] }
        : chart;
      const data: uPlot.AlignedData = [rounds, ...c.series.map((se) => s.history.map((h) => (h.status === 'running' ? null : se.values(h))))];
      // One set of charts per task and series: another task (or a baseline appearing) draws them anew.
      const key = `${task}/${c.series.length}`;
      let plot = this.#plots.get(c.id);
      if (plot && this.#plotKeys.get(c.id) !== key) {
        plot.destroy();
        this.#plots.delete(c.id);
        plot = undefined;
      }
      this.#plotKeys.set(c.id, key);
      if (plot) plot.setData(data);
      else {
        const host = byId(c.id);
        this.#plots.set(c.id, new uPlot({
          title: c.title, width: chartWidth(), height: 240,
          scales: { x: { time: false }, ...(c.y === '%' && { y: { range: [0, 100] as uPlot.Range.MinMax } }) },
          // Rounds are whole numbers: ticks at integers only.
          axes: [{ label: 'round', incrs: [1, 2, 5, 10, 20, 50], values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) }, { label: c.y }],
          series: [{ label: 'round' }, ...c.series.map((se) => ({ label: se.label, stroke: se.stroke, width: 2, points: { show: true }, ...(se.dash && { dash: se.dash }) }))],
        }, data, host));
      }
      // Charts are pictures to screen readers: name each with its numbers.
      const canvas = this.#plots.get(c.id)!.root.querySelector('canvas')!;
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `${c.title}: ${s.history.filter((h) => h.status !== 'running').map((h) => `round ${h.round} ${c.series.map((se) => `${se.label} ${se.values(h)?.toFixed(2) ?? '–'}`).join(', ')}`).join('; ') || 'no finished rounds yet'}`);
    }
    this.rendered = done.length;
    // Every finished round in words: what it published (and how well), or why it was abandoned.
    byId('watch-versions').replaceChildren(...done.map((h) => el('li', {}, h.version ? [
      `round ${h.round}: published ${s.model}@${h.version} from ${h.unmasked} devices' masked updates${h.accuracy === undefined ? '' : ` — ${(h.accuracy * 100).toFixed(2)} % on 300 held-out digits`}${h.epsilon === undefined || !s.privacy ? '' : `; ε spent per device up to ${h.epsilon.toFixed(2)}`} `,
      el('button', { type: 'button', textContent: `Try ${h.version}`, onclick: () => this.#onTry(s.model, h.version!) }),
    ] : [`round ${h.round}: abandoned — ${h.reason ?? 'no reason recorded'}`])));
    if (s.status === 'finished') clearInterval(this.#timer);
  }
}
