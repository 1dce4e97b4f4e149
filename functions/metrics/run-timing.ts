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

  /** The ORT run this request was part of: whether it started it (one execution per run), and its rows. */
  run: { leader: boolean; rows: number } = { leader: true, rows: 0 };

  mark(phase: Phase): void {
    this.marks[phase] = performance.now();
  }

  /** Records that this request ran in a dynamic batch of `rows` rows (dynamic-batcher.ts). */
  execution(leader: boolean, rows: number): void {
    this.run = { leader, rows };
  }

  /** The compute phases of the batched run `lead` started (this request shared it). */
  copyMarks(lead: RunTimer | undefined): void {
    if (!lead) return;
    for (const p of ['input', 'infer', 'output'] as const)
      if (lead.marks[p] !== undefined) this.marks[p] = lead.marks[p];
  }

  /** Milliseconds of each phase; a phase the run never reached is undefined. */
  phases(end = performance.now()): { total: number; queue?: number; input?: number; infer?: number; output?: number } {
    const { start, input, infer, output } = this.marks;
    const span = (a?: number, b?: number) => (a !== undefined && b !== undefined ? Math.max(0, b - a) : undefined);
    return {
      total: Math.max(0, end - this.queued),
      queue: span(this.queued, start),
      input: span(start, input),
      infer: span(input, infer),
      output: span(infer, output),
    };
  }
}
