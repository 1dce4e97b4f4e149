/**
 * "Watch a task": rounds, participants, dropouts, accuracy and ε per round as charts (uPlot), refreshed every few
 * seconds, in the page's colour scheme; the versions the task published with a button to try each; and the task's lifecycle
 * (pause, resume, finish, delete: admin).
 */
import uPlot from 'uplot';
import type { EdgeClient, TaskStatus, TaskSummary } from '../../client-sdk/index.ts';
import { accuracy } from '../../federated/model/accuracy.ts';
import { byId, el, errorText, say } from './dom.ts';

type Round = TaskStatus['history'][number];
/** A series: its colour is one of the stylesheet's --chart-N tokens (light or dark, as the page is). */
type Series = {
  label: string;
  color: string;
  dash?: number[];
  underlay?: boolean;
  values: (r: Round) => number | null;
  atZero?: number;
};
type Chart = { id: string; title: string; y: string; series: Series[]; none?: string; counts?: boolean };

/** The charts a task gets; ε only for the kinds of privacy it has. */
function chartsFor(s: TaskStatus, baseline: number | undefined): Chart[] {
  const acc: Series[] = [
    { label: 'accuracy', color: '--chart-1', values: (r) => (r.accuracy === undefined ? null : r.accuracy * 100) },
  ];
  // A task on a served model's head has a baseline: the base model itself, before any round (same 300 digits).
  // Drawn from round 0, before any round: with one round so far it is still a line, not a point under another.
  if (baseline !== undefined && s.base)
    acc.push({
      label: `${s.base.model}@${s.base.version} before federation`,
      color: '--chart-6',
      dash: [6, 4],
      values: () => baseline * 100,
      atZero: baseline * 100,
    });
  const privacy: Series[] = [];
  if (s.privacy)
    privacy.push({ label: 'max device ε (example-level)', color: '--chart-4', values: (r) => r.epsilon ?? null });
  if (s.distributedDp || s.history.some((h) => h.clientEpsilon !== undefined))
    privacy.push({
      label: 'client-level ε (distributed DP)',
      color: '--chart-5',
      values: (r) => r.clientEpsilon ?? null,
    });
  return [
    { id: 'chart-accuracy', title: 'Accuracy of each published model on 300 held-out digits', y: '%', series: acc },
    {
      id: 'chart-devices',
      title: 'Devices per round',
      y: 'devices',
      counts: true,
      series: [
        // Drawn first and wide, so "in the sum" on top of it leaves it showing when the two are equal.
        { label: 'checked in', color: '--chart-2', underlay: true, values: (r) => r.advertised },
        { label: 'in the sum', color: '--chart-1', values: (r) => r.submitted },
        { label: 'dropped out', color: '--chart-3', dash: [5, 4], values: (r) => r.dropouts },
      ],
    },
    {
      id: 'chart-privacy',
      title: 'Privacy spent',
      y: 'ε',
      series: privacy,
      none: 'Privacy spent: this task trains without differential privacy, so there is no ε to chart.',
    },
  ];
}

/** As wide as a phone allows (the section's padding aside), at most 440 px. */
const chartWidth = () => Math.max(260, Math.min(440, document.documentElement.clientWidth - 64));

const dark = matchMedia('(prefers-color-scheme: dark)');
const token = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
/** A #rrggbb token at some opacity (canvas strokes take rgba()). */
function translucent(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.replace('#', ''), 16);
  return Number.isNaN(n) ? hex : `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function plotOptions(c: Chart): uPlot.Options {
  const muted = token('--muted'),
    line = token('--line'),
    surface = token('--surface');
  const colors = c.series.map((se) => token(se.color));
  const axis = { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
  // Whole numbers (rounds, devices): ticks at integers only.
  const whole = {
    incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    values: (_u: uPlot, ticks: number[]) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')),
  };
  // From 0, with room above the highest point (a line along the top edge was cut in half).
  const fromZero: uPlot.Range.Function = (_u, _min, max) => [
    0,
    max > 0 ? (c.counts ? Math.ceil(max * 1.15 + 0.5) : max * 1.15) : 1,
  ];
  return {
    title: c.title,
    width: chartWidth(),
    height: 240,
    scales: { x: { time: false }, y: { range: c.y === '%' ? ([0, 100] as uPlot.Range.MinMax) : fromZero } },
    axes: [
      { ...axis, label: 'round', ...whole },
      { ...axis, label: c.y, ...(c.counts && whole) },
    ],
    // The legend names the series; no live readout under a cursor (it showed "--" until one hovered).
    legend: {
      live: false,
      markers: {
        stroke: (_u, i) => colors[i - 1] ?? muted,
        dash: (_u, i) => (c.series[i - 1]?.dash ? 'dashed' : 'solid'),
      },
    },
    series: [
      { label: 'round' },
      ...c.series.map((se, i) =>
        se.underlay
          ? {
              label: se.label,
              stroke: translucent(colors[i]!, 0.5),
              width: 10,
              points: { show: true, size: 15, width: 0, fill: translucent(colors[i]!, 0.6) },
            }
          : {
              label: se.label,
              stroke: colors[i]!,
              width: 2,
              points: { show: true, fill: surface },
              ...(se.dash && { dash: se.dash }),
            },
      ),
    ],
  };
}

export class WatchPanel {
  readonly #edge: EdgeClient;
  readonly #admin: () => EdgeClient;
  readonly #plots = new Map<string, uPlot>();
  readonly #plotKeys = new Map<string, string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #listTimer: ReturnType<typeof setInterval> | undefined;
  readonly #onTry: (model: string, version: string) => void;
  /** The task being watched, its last status (the task list's row for it shows the same) and baseline. */
  #watched = '';
  #status: TaskStatus | undefined;
  #baseline: number | undefined;
  /** The last GET /v1/tasks. */
  #tasks: TaskSummary[] | undefined;
  /** Rounds drawn so far (tests wait on it). */
  rendered = 0;

  /** `admin`: a client with the admin token (the Admin section's), for pause, resume, finish and delete. */
  constructor(edge: EdgeClient, onTry: (model: string, version: string) => void, admin: () => EdgeClient) {
    this.#edge = edge;
    this.#onTry = onTry;
    this.#admin = admin;
    // uPlot draws at a fixed size: follow the window (a phone turned, a desktop window narrowed).
    addEventListener('resize', () => {
      for (const plot of this.#plots.values()) plot.setSize({ width: chartWidth(), height: 240 });
    });
    // uPlot draws axes and series on a canvas in colours it was given: draw again in the other scheme's.
    dark.addEventListener('change', () => this.#draw());
    byId<HTMLInputElement>('watch-task').value =
      new URL(location.href).searchParams.get('task') ?? localStorage.getItem('fedge.task') ?? '';
    byId('watch-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.watch(byId<HTMLInputElement>('watch-task').value.trim());
    });
    this.#action(
      'task-pause',
      async (c, task) => (await c.pauseTask(task), `paused ${task}: its round waits where it is until you resume it`),
    );
    this.#action('task-resume', async (c, task) => (await c.resumeTask(task), `resumed ${task}`));
    this.#action(
      'task-finish',
      async (c, task) => (
        await c.finishTask(task),
        `finished ${task}: no more rounds (one under way is abandoned); the versions it published stay served`
      ),
    );
    this.#action('task-delete', async (c, task) => {
      if (
        !confirm(
          `Delete the task ${task} and everything it stored (its rounds, its devices' enrollment)? The model versions it published stay. This cannot be undone.`,
        )
      )
        return undefined;
      // No status poll may be under way to find the task gone (a 404 in the console): stop it first.
      clearInterval(this.#timer);
      await c.deleteTask(task).catch((e: unknown) => {
        this.watch(task);
        throw e;
      });
      this.#forget(task);
      return `deleted the task ${task}`;
    });
  }

  /** A lifecycle button: runs with the admin token, says what happened, and shows the task's new status. */
  #action(id: string, run: (admin: EdgeClient, task: string) => Promise<string | undefined>): void {
    byId(id).addEventListener('click', () => {
      const task = this.#watched;
      if (!task) return;
      const buttons = [...byId('watch-actions').querySelectorAll('button')];
      for (const b of buttons) b.disabled = true;
      void run(this.#admin(), task)
        .then(
          async (m) => {
            if (m) say('watch-action-status', m, 'ok');
            if (this.#watched === task) await this.#refresh(task);
            await this.#list();
          },
          (e) =>
            say(
              'watch-action-status',
              `${errorText(e)}${/\b401\b|admin/i.test(errorText(e)) ? ' (the admin token is set under Admin)' : ''}`,
              'error',
            ),
        )
        .finally(() => {
          for (const b of buttons) b.disabled = false;
        });
    });
  }

  /** A deleted task: nothing of it stays on the page (its charts, rounds, the ?task= link, the remembered name). */
  #forget(task: string): void {
    clearInterval(this.#timer);
    this.#watched = '';
    this.#status = undefined;
    for (const plot of this.#plots.values()) plot.destroy();
    this.#plots.clear();
    this.#plotKeys.clear();
    for (const id of ['chart-accuracy', 'chart-devices', 'chart-privacy']) byId(id).replaceChildren();
    byId('watch-versions').replaceChildren();
    byId('watch-actions').hidden = true;
    say('watch-status', '');
    byId<HTMLInputElement>('watch-task').value = '';
    if (new URL(location.href).searchParams.get('task') === task) history.replaceState(null, '', location.pathname);
    if (localStorage.getItem('fedge.task') === task) localStorage.removeItem('fedge.task');
    this.#tasks = this.#tasks?.filter((t) => t.task !== task);
    this.#renderList();
  }

  /** Every task on the edge, each a link that watches it (`?task=`), refreshed while the page is open. */
  listTasks(): void {
    void this.#list();
    clearInterval(this.#listTimer);
    this.#listTimer = setInterval(() => void this.#list(), 5000);
  }

  async #list(): Promise<void> {
    try {
      this.#tasks = (await this.#edge.tasks({ limit: 100 })).tasks;
      this.#renderList();
    } catch (e) {
      say('watch-status', errorText(e), 'error');
    }
  }

  /**
   * The task list; the watched task's row from its latest status, so the row and the status line above never
   * disagree (the list is fetched less often).
   */
  #renderList(): void {
    if (!this.#tasks) return;
    const s = this.#status;
    const rows: TaskSummary[] = this.#tasks.map((t) =>
      s && t.task === s.task
        ? {
            ...t,
            status: s.status,
            round: s.round,
            stage: s.stage,
            rounds: s.rounds,
            enrolledDevices: s.enrolledDevices,
            published: s.history.filter((h) => h.status === 'published').length,
          }
        : t,
    );
    byId('task-list').replaceChildren(
      ...(rows.length
        ? rows.map((t) =>
            el('tr', t.task === this.#watched ? { ariaCurrent: 'true', className: 'current' } : {}, [
              el('td', {}, [
                el('a', {
                  href: `?task=${encodeURIComponent(t.task)}#watch`,
                  textContent: t.task,
                  onclick: (e: MouseEvent) => (
                    e.preventDefault(),
                    history.replaceState(null, '', `?task=${encodeURIComponent(t.task)}#watch`),
                    this.watch(t.task)
                  ),
                }),
              ]),
              el('td', { textContent: t.model }),
              el('td', { textContent: t.status }),
              el('td', { textContent: `${t.round} of ${t.rounds}` }),
              el('td', { textContent: t.status === 'finished' ? 'finished' : t.stage }),
              el('td', { textContent: String(t.enrolledDevices) }),
              el('td', { textContent: String(t.published) }),
            ]),
          )
        : [
            el('tr', {}, [
              el('td', { colSpan: 7, textContent: 'No tasks yet: start the demo above, or create one under Admin.' }),
            ]),
          ]),
    );
  }

  watch(task: string): void {
    clearInterval(this.#timer);
    if (!task) return;
    if (task !== this.#watched) {
      this.#status = undefined;
      say('watch-action-status', '');
    }
    this.#watched = task;
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
    this.#heldOut ??= Promise.all([
      fetch('/assets/heldout-digits.bin').then((r) => r.arrayBuffer()),
      fetch('/assets/heldout-labels.json').then((r) => r.json() as Promise<number[]>),
    ]).then(([x, y]) => ({ x: new Float32Array(x), y }));
    const { x, y } = await this.#heldOut;
    const r = await this.#edge.infer(
      model,
      { [meta.inputs[0]!.name]: { data: x, shape: [y.length, ...rest] } },
      { version },
    );
    const measured = accuracy(Object.values(r.outputs)[0]!.data as Float32Array, y);
    this.#measured.set(key, measured);
    return measured;
  }

  async #refresh(task: string): Promise<void> {
    let s: TaskStatus;
    try {
      s = await this.#edge.task(task);
      for (const h of s.history)
        if (h.version && h.accuracy === undefined) h.accuracy = await this.#accuracy(s.model, h.version);
    } catch (e) {
      if (task === this.#watched) say('watch-status', errorText(e), 'error');
      return;
    }
    // A task on a served model's head has a baseline: the base model itself, before any round (same 300 digits).
    const baseline = s.base ? await this.#accuracy(s.base.model, s.base.version).catch(() => undefined) : undefined;
    if (task !== this.#watched) return; // another task is watched now (or this one was deleted)
    // From here on nothing waits: the status line, the buttons, the task list and the charts show the same moment.
    const done = s.history.filter((h) => h.status !== 'running');
    // A task on a served model's head says which model and which of its layers the devices train.
    const trains = s.base
      ? `; devices train the ${s.base.trainable} of ${s.base.model}@${s.base.version} (${s.base.layers.join(', ')})`
      : '';
    const status = s.pausedReason ? `paused (${s.pausedReason})` : s.status;
    say(
      'watch-status',
      `${s.task}: ${status}, round ${s.round} of ${s.rounds} (${s.stage}); ${s.enrolledDevices} devices enrolled, ${s.devicesPerRound} per round; ${done.filter((h) => h.status === 'published').length} published, ${done.filter((h) => h.status === 'abandoned').length} abandoned${trains}`,
    );
    // Each lifecycle button only where it applies: pause an active task, resume a paused one, finish either; delete any.
    byId('watch-actions').hidden = false;
    byId('watch-state').replaceChildren('status: ', el('strong', { textContent: s.status }));
    byId('task-pause').hidden = s.status !== 'running';
    byId('task-resume').hidden = s.status !== 'paused';
    byId('task-finish').hidden = s.status === 'finished';
    this.#baseline = baseline;
    this.#status = s;
    this.#renderList();
    // The list does not know a task created since it was fetched (the demo's): fetch it now.
    if (this.#tasks && !this.#tasks.some((t) => t.task === task)) void this.#list();
    this.#draw();
    this.rendered = done.length;
    // Every finished round in words: what it published (and how well), or why it was abandoned.
    byId('watch-versions').replaceChildren(
      ...(done.length
        ? done.map((h) =>
            el(
              'li',
              {},
              h.version
                ? [
                    `round ${h.round}: published ${s.model}@${h.version} from ${h.unmasked} devices' masked updates${h.accuracy === undefined ? '' : ` — ${(h.accuracy * 100).toFixed(2)} % on 300 held-out digits`}${h.epsilon === undefined || !s.privacy ? '' : `; ε spent per device up to ${h.epsilon.toFixed(2)}`} `,
                    el('button', {
                      type: 'button',
                      textContent: `Try ${h.version}`,
                      onclick: () => this.#onTry(s.model, h.version!),
                    }),
                  ]
                : [`round ${h.round}: abandoned — ${h.reason ?? 'no reason recorded'}`],
            ),
          )
        : [el('li', { className: 'empty', textContent: 'No finished rounds yet.' })]),
    );
    if (s.status === 'finished') clearInterval(this.#timer);
  }

  /** The charts of the watched task's last status, in the page's current colours. */
  #draw(): void {
    const s = this.#status;
    if (!s) return;
    const scheme = dark.matches ? 'dark' : 'light';
    const rounds = s.history.map((h) => h.round);
    for (const c of chartsFor(s, this.#baseline)) {
      const host = byId(c.id);
      // One set of charts per task, series and colour scheme: another task (a baseline appearing, dark mode) draws them anew.
      const key = `${s.task}/${c.series.map((se) => se.label).join('|')}/${scheme}`;
      let plot = this.#plots.get(c.id);
      if (plot && this.#plotKeys.get(c.id) !== key) {
        plot.destroy();
        this.#plots.delete(c.id);
        plot = undefined;
      }
      this.#plotKeys.set(c.id, key);
      if (!c.series.length) {
        host.replaceChildren(el('p', { className: 'chart-note', textContent: c.none ?? '' }));
        continue;
      }
      const zero = c.series.some((se) => se.atZero !== undefined);
      const data: uPlot.AlignedData = [
        zero ? [0, ...rounds] : rounds,
        ...c.series.map((se) => [
          ...(zero ? [se.atZero ?? null] : []),
          ...s.history.map((h) => (h.status === 'running' ? null : se.values(h))),
        ]),
      ];
      if (plot) plot.setData(data);
      else {
        host.replaceChildren();
        plot = new uPlot(plotOptions(c), data, host);
        this.#plots.set(c.id, plot);
      }
      // Charts are pictures to screen readers: name each with its numbers.
      const canvas = plot.root.querySelector('canvas')!;
      canvas.setAttribute('role', 'img');
      canvas.setAttribute(
        'aria-label',
        `${c.title}: ${
          s.history
            .filter((h) => h.status !== 'running')
            .map(
              (h) =>
                `round ${h.round} ${c.series.map((se) => `${se.label} ${se.values(h)?.toFixed(2) ?? '–'}`).join(', ')}`,
            )
            .join('; ') || 'no finished rounds yet'
        }`,
      );
    }
    byId('watch').querySelector<HTMLElement>('.charts')!.dataset.scheme = scheme;
  }
}
