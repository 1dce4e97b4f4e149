/**
 * A Prometheus counter (or gauge) with labels, kept in this isolate's memory. Label sets are keyed by their values in
 * the declared label order, so one metric's series stay bounded by what callers pass (route patterns, not raw paths).
 * Follows the Prometheus data model: a counter only goes up; a gauge is set.
 */
export type Labels = Record<string, string>;

export interface Series<V> {
  labels: Labels;
  value: V;
}

/** Series of one metric by label values; shared by Counter and Histogram. */
export class LabelledSeries<V> {
  readonly #series = new Map<string, Series<V>>();
  readonly #create: () => V;
  readonly labelNames: readonly string[];

  constructor(labelNames: readonly string[], create: () => V) {
    this.labelNames = labelNames;
    this.#create = create;
  }

  get(labels: Labels): V {
    const key = JSON.stringify(this.labelNames.map((n) => labels[n] ?? ''));
    let s = this.#series.get(key);
    if (!s) {
      const own: Labels = {};
      for (const n of this.labelNames) own[n] = labels[n] ?? '';
      this.#series.set(key, (s = { labels: own, value: this.#create() }));
    }
    return s.value;
  }

  *all(): IterableIterator<Series<V>> {
    yield* this.#series.values();
  }
}

export class Counter {
  readonly #series: LabelledSeries<{ n: number }>;
  readonly name: string;
  readonly help: string;

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    this.name = name;
    this.help = help;
    this.#series = new LabelledSeries(labelNames, () => ({ n: 0 }));
  }

  inc(labels: Labels = {}, by = 1): void {
    this.#series.get(labels).n += by;
  }

  value(labels: Labels = {}): number {
    return this.#series.get(labels).n;
  }

  *samples(): IterableIterator<{ labels: Labels; value: number }> {
    for (const s of this.#series.all()) yield { labels: s.labels, value: s.value.n };
  }
}
