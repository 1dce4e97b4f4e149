/**
 * A Prometheus histogram with fixed upper bounds (`le`), kept in this isolate's memory: cumulative bucket counts,
 * the sum and the count of observations, per label set (Prometheus data model, "Histogram").
 */
import { type Labels, LabelledSeries } from './counter.ts';

export interface HistogramValue {
  /** Observations ≤ each bound, in bound order (not yet cumulative: rendering adds them up). */
  buckets: number[];
  sum: number;
  count: number;
}

export class Histogram {
  readonly #series: LabelledSeries<HistogramValue>;

  readonly name: string;
  readonly help: string;
  readonly bounds: readonly number[];

  constructor(name: string, help: string, bounds: readonly number[], labelNames: readonly string[] = []) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) throw new Error(`${name}: bucket bounds must increase`);
    this.#series = new LabelledSeries(labelNames, () => ({ buckets: bounds.map(() => 0), sum: 0, count: 0 }));
  }

  observe(value: number, labels: Labels = {}): void {
    const s = this.#series.get(labels);
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) s.buckets[i]! += 1; // above the last bound: counted only in +Inf (= count)
    s.sum += value;
    s.count += 1;
  }

  *samples(): IterableIterator<{ labels: Labels; value: HistogramValue }> {
    yield* this.#series.all();
  }
}
