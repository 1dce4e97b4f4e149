/**
 * A small self-contained SVG line chart (no dependencies, opens in any browser): one or more series over rounds,
 * with axes, ticks and a legend. The simulation writes one per run so a run can be looked at, not read; the DP and
 * mixed-load benchmarks draw theirs with it too.
 */
export interface Series {
  label: string;
  points: { x: number; y: number }[];
  color: string;
  /** A reference level (a baseline), drawn dashed without markers. */
  dashed?: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function lineChartSvg(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}): string {
  // The legend wraps in rows of three between the title and the plot, so it never covers a line.
  const legendRows = Math.ceil(o.series.length / 3);
  const W = o.width ?? 720,
    H = (o.height ?? 360) + 16 * (legendRows - 1),
    L = 60,
    R = 20,
    T = 34 + 16 * legendRows,
    B = 50;
  const pts = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  const xMin = Math.min(...pts.map((p) => p.x)),
    xMax = Math.max(...pts.map((p) => p.x), xMin + 1);
  // A little room above and below the data, so a line at the extreme is not drawn on the frame.
  const lo = Math.min(...pts.map((p) => p.y)),
    hi = Math.max(...pts.map((p) => p.y)),
    pad = (hi - lo) * 0.05 || 1e-9;
  const yMin = o.yMin ?? lo - pad,
    yMax = o.yMax ?? Math.max(hi + pad, yMin + 1e-9);
  const sx = (x: number) => L + ((x - xMin) / (xMax - xMin)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - yMin) / (yMax - yMin)) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  ];
  // Round ticks (1, 2 or 5 × 10^k apart) with only the decimals that step needs.
  const yStep = niceStep((yMax - yMin) / 5);
  const decimals = Math.max(0, -Math.floor(Math.log10(yStep) + 1e-9));
  for (let y = Math.ceil(yMin / yStep - 1e-9) * yStep; y <= yMax + yStep * 1e-9; y += yStep) {
    parts.push(
      `<line x1="${L}" y1="${sy(y)}" x2="${W - R}" y2="${sy(y)}" stroke="#eee"/><text x="${L - 6}" y="${sy(y) + 4}" text-anchor="end">${y.toFixed(decimals)}</text>`,
    );
  }
  const step = Math.max(1, niceStep((xMax - xMin) / 10));
  for (let x = Math.ceil(xMin / step) * step; x <= xMax; x += step)
    parts.push(`<text x="${sx(x)}" y="${H - B + 16}" text-anchor="middle">${x}</text>`);
  o.series.forEach((s, k) => {
    const ok = s.points.filter((p) => Number.isFinite(p.y));
    parts.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${ok.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`,
    );
    if (!s.dashed)
      for (const p of ok)
        parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const lx = L + (k % 3) * ((W - L - R) / 3),
      ly = 28 + 16 * Math.floor(k / 3);
    parts.push(
      `<rect x="${lx}" y="${ly}" width="10" height="10" fill="${s.color}"/><text x="${lx + 16}" y="${ly + 9}">${esc(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The smallest of 1, 2, 5 × 10^k that is at least `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw > 0 ? raw : 1));
  return ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
}
