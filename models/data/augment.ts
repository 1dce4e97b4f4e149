/** Random ±maxShift pixel translations of 28×28 digits: cheap augmentation that lifts a small-data MLP/CNN. */
export function shiftDigits(x: Float32Array, n: number, maxShift: number, rand: () => number): Float32Array {
  const out = new Float32Array(x.length);
  for (let k = 0; k < n; k++) {
    const dx = Math.round((rand() * 2 - 1) * maxShift), dy = Math.round((rand() * 2 - 1) * maxShift);
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
