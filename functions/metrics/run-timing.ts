/**
 * Timestamps of one inference run, for the phases Triton's statistics extension reports: `queue` (waiting for the
 * session to load and for the runs ahead of it on the same session), `compute_input` (building ORT tensors),
 * `compute_infer` (session.run), `compute_output` (turning ORT's outputs back into tensors).
 * The clock is performance.now(): on Cloudflare it advances only when the isolate does I/O (a Spectre
 * mitigation), so phases that are pure computation may read 0 there; the totals still span the awaits.
 */
export type Phase = 'start' | 'input' | 'infer' | 'output';

export class RunTimer {
  readonly queued = performance.now();
  readonly marks: Partial<Record<Phase, number>> = {};

  mark(phase: Phase): void {
    this.marks[phase] = performance.now();
  }

  /** Milliseconds of each phase; a phase the run never reached is undefined. */
  phases(end = performance.now()): { total: number; queue?: number; input?: number; infer?: number; output?: number } {
    const { start, input, infer, output } = this.marks;
    const span = (a?: number, b?: number) => (a !== undefined && b !== undefined ? Math.max(0, b - a) : undefined);
    return { total: Math.max(0, end - this.queued), queue: span(this.queued, start), input: span(start, input), infer: span(input, infer), output: span(infer, output) };
  }
}
