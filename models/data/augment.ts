/** Random ±maxShift pixel translations of 28×28 digits: cheap augmentation that lifts a small-data MLP/CNN. */
export function shiftDigits(x: Float32Array, n: number, maxShift: number, rand: () => number): Float32Array {
  const out = new Float32Array(x.length);
  for (let k = 0; k < n; k++) {
    const dx = Math.round((rand() * 2 - 1) * maxShift),
      dy = Math.round((rand() * 2 - 1) * maxShift);
    const base = k * 784;
    for (let r = 0; r < 28; r++) {
      const sr = r - dy;
      if (sr < 0 || sr >= 28) continue;
      for (let c = 0; c < 28; c++) {
        const sc = c - dx;
        if (sc >= 0 && sc < 28) out[base + r * 28 + c] = x[base + sr * 28 + sc]!;
      }
    }
  }
  return out;
}

/**
 * Random affine distortions of 28×28 digits — rotation ±maxDegrees, scale 1 ± maxScale, translation ±maxShift px —
 * with bilinear sampling (Simard et al. 2003 showed such distortions are what lets small MNIST training sets
 * generalise).
 */
export function affineDigits(
  x: Float32Array,
  n: number,
  opts: { maxDegrees: number; maxScale: number; maxShift: number },
  rand: () => number,
): Float32Array {
  const out = new Float32Array(x.length);
  const u = () => rand() * 2 - 1;
  for (let k = 0; k < n; k++) {
    const theta = (u() * opts.maxDegrees * Math.PI) / 180,
      scale = 1 + u() * opts.maxScale;
    const dx = u() * opts.maxShift,
      dy = u() * opts.maxShift;
    const cos = Math.cos(theta) / scale,
      sin = Math.sin(theta) / scale;
    const base = k * 784;
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        // inverse map: output pixel → source point, rotating and scaling about the centre
        const yr = r - 13.5 - dy,
          xc = c - 13.5 - dx;
        const sy = cos * yr - sin * xc + 13.5,
          sx = sin * yr + cos * xc + 13.5;
        const y0 = Math.floor(sy),
          x0 = Math.floor(sx);
        const fy = sy - y0,
          fx = sx - x0;
        const px = (yy: number, xx: number) => (yy >= 0 && yy < 28 && xx >= 0 && xx < 28 ? x[base + yy * 28 + xx]! : 0);
        out[base + r * 28 + c] =
          (1 - fy) * ((1 - fx) * px(y0, x0) + fx * px(y0, x0 + 1)) +
          fy * ((1 - fx) * px(y0 + 1, x0) + fx * px(y0 + 1, x0 + 1));
      }
    }
  }
  return out;
}
