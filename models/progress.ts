/** A one-line progress bar on a terminal (redrawn in place); plain lines when output is not a TTY. */
export function progressBar(
  label: string,
  total: number,
): { update(done: number, note?: string): void; done(note: string): void } {
  const tty = process.stdout.isTTY;
  let lastPct = -1;
  const draw = (done: number, note = '') => {
    const frac = Math.min(1, done / total);
    const width = 24;
    const full = Math.round(frac * width);
    return `${label} ▕${'█'.repeat(full)}${' '.repeat(width - full)}▏ ${(frac * 100).toFixed(0).padStart(3)}% ${note}`;
  };
  return {
    update(done, note) {
      if (!tty) return;
      const pct = Math.floor((done / total) * 100);
      if (pct === lastPct) return;
      lastPct = pct;
      process.stdout.write(`\r${draw(done, note)}\x1b[K`);
    },
    done(note) {
      process.stdout.write(`${tty ? '\r' : ''}${draw(total, note)}${tty ? '\x1b[K' : ''}\n`);
      lastPct = -1;
    },
  };
}
