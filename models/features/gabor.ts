/**
 * A fixed (data-independent) Gabor filter bank for image models trained under DP.
 *
 * Why: DP-SGD's noise grows with the number of trained parameters and its clipping throws away signal, so private
 * models learn far better on good fixed features than end to end (Tramèr & Boneh, "Differentially Private
 * Learning Needs Better Features (or Much More Data)", ICLR 2021, §3: ScatterNet features + a linear model). This
 * is a first-order, ONNX-friendly cousin of their scattering transform: even (cos) and odd (sin) Gabor filters at
 * `orientations` angles, each in ± sign so a ReLU gives both half-waves (the modulus ScatterNet takes is not an
 * ONNX conv), plus one Gaussian low-pass. Used as a frozen conv2d layer: the filters depend on no data, so they
 * cost no privacy budget, and only the layers after them are trained.
 */
export interface GaborBank {
  orientations: number;
  /** Odd kernel side, e.g. 7 */
  size: number;
  /** Gaussian envelope σ in pixels; the carrier wavelength is 2.5σ */
  sigma: number;
}

/** Number of filters of a bank: 4 per orientation + the low-pass. */
export const gaborFilters = (b: GaborBank): number => 4 * b.orientations + 1;

/** Kernel [size, size, 1, filters] in the tfjs conv layout (row-major), zero-mean band-pass filters. */
export function gaborKernel(b: GaborBank): Float32Array {
  const { orientations: L, size: K, sigma: S } = b;
  const F = gaborFilters(b);
  const w = new Float32Array(K * K * F);
  const c = (K - 1) / 2;
  const freq = (2 * Math.PI) / (2.5 * S);
  for (let y = 0; y < K; y++) {
    for (let x = 0; x < K; x++) {
      const dx = x - c,
        dy = y - c;
      const envelope = Math.exp(-(dx * dx + dy * dy) / (2 * S * S));
      const base = (y * K + x) * F;
      for (let o = 0; o < L; o++) {
        const theta = (Math.PI * o) / L;
        const u = dx * Math.cos(theta) + dy * Math.sin(theta);
        const even = envelope * Math.cos(freq * u),
          odd = envelope * Math.sin(freq * u);
        w[base + 4 * o] = even;
        w[base + 4 * o + 1] = -even;
        w[base + 4 * o + 2] = odd;
        w[base + 4 * o + 3] = -odd;
      }
      w[base + 4 * L] = envelope;
    }
  }
  // Band-pass filters respond to edges, not to overall brightness: remove their mean.
  for (let f = 0; f < 4 * L; f++) {
    let mean = 0;
    for (let i = 0; i < K * K; i++) mean += w[i * F + f]!;
    mean /= K * K;
    for (let i = 0; i < K * K; i++) w[i * F + f]! -= mean;
  }
  return w;
}
