/**
 * A second-order wavelet scattering transform of square images (Mallat 2012; Bruna & Mallat 2013), the fixed
 * features Tramèr & Boneh ("Differentially Private Learning Needs Better Features (or Much More Data)", ICLR 2021)
 * train DP linear models on: ScatterNet with J = 2 scales and L = 8 orientations gives 81 channels on a 7×7 grid
 * for a 28×28 digit, and a linear model over them reaches ~98.7 % on MNIST at ε = 3 (60,000 digits).
 *
 * Same construction as Kymatio's Scattering2D (Andreux et al., JMLR 2020): Morlet wavelets ψ_{j,θ} with σ = 0.8·2^j,
 * ξ = 3π/4·2^-j, slant 4/L; a Gaussian low-pass φ with σ = 0.8·2^(J-1); every filter built in space, periodised
 * and taken to the Fourier domain (where it is real). For each image x (zero-padded to a power of two):
 *   S0 = x ⋆ φ ↓2^J,   S1[j1,θ1] = |x ⋆ ψ_{j1,θ1}| ⋆ φ ↓2^J,   S2[j1,θ1,j2,θ2] = ||x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}| ⋆ φ ↓2^J  (j2 > j1),
 * each |·| computed at the resolution its wavelet allows (subsampling in the Fourier domain by periodisation), so
 * one 28×28 digit costs ~2.5 Mflop. Output channels, in order: S0; S1 by (j1, θ1); S2 by (j1, θ1, j2, θ2).
 *
 * Pure code, no data: the features cost no privacy budget. Not an ONNX graph (the modulus is not a conv), so a
 * model trained on them takes the features as its input (models/specs.ts mnistScatter).
 */
export interface ScatteringOptions {
  /** Side of the (square) input image, e.g. 28; a multiple of 2^J. */
  size: number;
  /** Number of scales (the output grid is size / 2^J); 1..3. */
  J: number;
  /** Orientations per scale, even. */
  L: number;
}

/** Channels of the transform: 1 + J·L + L²·J(J−1)/2 (81 for J = 2, L = 8). */
export const scatteringChannels = (o: ScatteringOptions): number => 1 + o.J * o.L + (o.L * o.L * o.J * (o.J - 1)) / 2;
/** Side of each channel's output grid. */
export const scatteringGrid = (o: ScatteringOptions): number => o.size / 2 ** o.J;
/** Features per image: channels × grid² (3,969 for a 28×28 digit with J = 2, L = 8). */
export const scatteringFeatures = (o: ScatteringOptions): number => scatteringChannels(o) * scatteringGrid(o) ** 2;

interface Bank {
  o: ScatteringOptions;
  /** Padded side, a power of two. */
  P: number;
  pad: number;
  /** psi[j][θ][r]: ψ_{j,θ} in the Fourier domain at resolution P/2^r (r ≤ j), real. */
  psi: Float64Array[][][];
  /** phi[r]: φ in the Fourier domain at resolution P/2^r. */
  phi: Float64Array[];
}

const banks = new Map<string, Bank>();

function bankFor(o: ScatteringOptions): Bank {
  const key = `${o.size}/${o.J}/${o.L}`;
  let b = banks.get(key);
  if (!b) banks.set(key, (b = buildBank(o)));
  return b;
}

function check(o: ScatteringOptions): void {
  if (!(Number.isInteger(o.J) && o.J >= 1 && o.J <= 3)) throw new RangeError(`scattering: J must be 1..3, got ${o.J}`);
  if (!(Number.isInteger(o.L) && o.L >= 2 && o.L % 2 === 0))
    throw new RangeError(`scattering: L must be an even integer ≥ 2, got ${o.L}`);
  if (!(Number.isInteger(o.size) && o.size > 0 && o.size % 2 ** o.J === 0))
    throw new RangeError(`scattering: size must be a positive multiple of 2^J = ${2 ** o.J}, got ${o.size}`);
}

/** Σ over periodic copies of a complex Gabor e^{-x'Σx/2σ²} e^{iξ(x cosθ + y sinθ)} on a P×P torus centred at 0. */
function gabor(
  P: number,
  sigma: number,
  theta: number,
  xi: number,
  slant: number,
): { re: Float64Array; im: Float64Array } {
  const c = Math.cos(theta),
    s = Math.sin(theta);
  // R·diag(1, slant²)·Rᵀ / 2σ²: elongated across the carrier
  const a = (c * c + slant * slant * s * s) / (2 * sigma * sigma);
  const bxy = (2 * c * s * (1 - slant * slant)) / (2 * sigma * sigma);
  const d = (s * s + slant * slant * c * c) / (2 * sigma * sigma);
  const re = new Float64Array(P * P),
    im = new Float64Array(P * P);
  const norm = (2 * Math.PI * sigma * sigma) / slant;
  for (let ex = -2; ex <= 2; ex++) {
    for (let ey = -2; ey <= 2; ey++) {
      for (let u = 0; u < P; u++) {
        const x = u + ex * P;
        for (let v = 0; v < P; v++) {
          const y = v + ey * P;
          const mag = Math.exp(-(a * x * x + bxy * x * y + d * y * y)) / norm;
          const phase = xi * (x * c + y * s);
          re[u * P + v]! += mag * Math.cos(phase);
          im[u * P + v]! += mag * Math.sin(phase);
        }
      }
    }
  }
  return { re, im };
}

/** The real part of the 2-D DFT of a spatial filter (its imaginary part vanishes: the filters are Hermitian). */
function fourierOf(f: { re: Float64Array; im: Float64Array }, P: number): Float64Array {
  const re = Float64Array.from(f.re),
    im = Float64Array.from(f.im);
  fft2(re, im, P, false);
  return re;
}

/** A P×P Fourier-domain filter at resolution P/2^r: its values at the frequencies that resolution has. */
function atResolution(f: Float64Array, P: number, r: number): Float64Array {
  const n = P >> r;
  const out = new Float64Array(n * n);
  const full = (k: number) => (k < n / 2 ? k : k - n + P);
  for (let u = 0; u < n; u++) for (let v = 0; v < n; v++) out[u * n + v] = f[full(u) * P + full(v)]!;
  return out;
}

function buildBank(o: ScatteringOptions): Bank {
  check(o);
  let P = 1;
  while (P < o.size + 2 ** o.J) P *= 2;
  const psi: Float64Array[][][] = [];
  for (let j = 0; j < o.J; j++) {
    const perTheta: Float64Array[][] = [];
    for (let t = 0; t < o.L; t++) {
      const sigma = 0.8 * 2 ** j,
        theta = ((o.L / 2 - 1 - t) * Math.PI) / o.L,
        xi = (0.75 * Math.PI) / 2 ** j,
        slant = 4 / o.L;
      // Morlet: the Gabor minus the Gaussian that makes it zero-mean.
      const wave = gabor(P, sigma, theta, xi, slant),
        env = gabor(P, sigma, theta, 0, slant);
      let sw = 0,
        se = 0,
        swi = 0;
      for (let i = 0; i < P * P; i++) {
        sw += wave.re[i]!;
        swi += wave.im[i]!;
        se += env.re[i]!;
      }
      const kRe = sw / se,
        kIm = swi / se;
      for (let i = 0; i < P * P; i++) {
        wave.re[i]! -= kRe * env.re[i]!;
        wave.im[i]! -= kIm * env.re[i]!;
      }
      const f = fourierOf(wave, P);
      perTheta.push(Array.from({ length: j + 1 }, (_, r) => atResolution(f, P, r)));
    }
    psi.push(perTheta);
  }
  const lowpass = fourierOf(gabor(P, 0.8 * 2 ** (o.J - 1), 0, 0, 1), P);
  const phi = Array.from({ length: o.J + 1 }, (_, r) => atResolution(lowpass, P, r));
  return { o, P, pad: (P - o.size) / 2, psi, phi };
}

/** Scattering features of n images (n × size², row-major) → n × {@link scatteringFeatures} (channel, row, column). */
export function scatter(images: Float32Array, n: number, o: ScatteringOptions): Float32Array {
  const b = bankFor(o);
  const S = o.size,
    P = b.P,
    F = scatteringFeatures(o);
  if (images.length !== n * S * S)
    throw new RangeError(`scattering: ${images.length} values for ${n} images of ${S}×${S}`);
  const out = new Float32Array(n * F);
  const re = new Float64Array(P * P),
    im = new Float64Array(P * P);
  for (let k = 0; k < n; k++) {
    re.fill(0);
    im.fill(0);
    for (let r = 0; r < S; r++)
      for (let c = 0; c < S; c++) re[(r + b.pad) * P + c + b.pad] = images[k * S * S + r * S + c]!;
    fft2(re, im, P, false);
    scatterOne(b, re, im, out.subarray(k * F, (k + 1) * F));
  }
  return out;
}

function scatterOne(b: Bank, x0Re: Float64Array, x0Im: Float64Array, out: Float32Array): void {
  const { J, L } = b.o;
  const G2 = scatteringGrid(b.o) ** 2;
  const lowpass = (u: { re: Float64Array; im: Float64Array }, r: number, channel: number) =>
    writeLowpass(b, u.re, u.im, r, out.subarray(channel * G2, (channel + 1) * G2));
  lowpass({ re: x0Re, im: x0Im }, 0, 0);
  let first = 1,
    second = 1 + J * L;
  for (let j1 = 0; j1 < J; j1++) {
    for (let t1 = 0; t1 < L; t1++) {
      const u1 = modulusAt(x0Re, x0Im, b.P, 0, b.psi[j1]![t1]![0]!, j1);
      lowpass(u1, j1, first++);
      for (let j2 = j1 + 1; j2 < J; j2++) {
        for (let t2 = 0; t2 < L; t2++)
          lowpass(modulusAt(u1.re, u1.im, b.P, j1, b.psi[j2]![t2]![j1]!, j2), j2, second++);
      }
    }
  }
}

/** FFT of |IFFT(periodise(X·ψ, 2^(to−from)))|: one wavelet modulus, from resolution `from` to `to`, in the Fourier domain. */
function modulusAt(
  xRe: Float64Array,
  xIm: Float64Array,
  P: number,
  from: number,
  psi: Float64Array,
  to: number,
): { re: Float64Array; im: Float64Array } {
  const { re, im } = periodised(xRe, xIm, psi, P >> from, 1 << (to - from));
  const m = P >> to;
  fft2(re, im, m, true);
  for (let i = 0; i < m * m; i++) {
    re[i] = Math.hypot(re[i]!, im[i]!);
    im[i] = 0;
  }
  fft2(re, im, m, false);
  return { re, im };
}

/**
 * (X·filter) subsampled by k in space, done in the Fourier domain: the mean of the k² aliased blocks
 * (the DFT of x[k·m] is (1/k²) Σ_blocks X[u + block·n/k]).
 */
function periodised(
  xRe: Float64Array,
  xIm: Float64Array,
  filter: Float64Array,
  n: number,
  k: number,
): { re: Float64Array; im: Float64Array } {
  const m = n / k;
  const re = new Float64Array(m * m),
    im = new Float64Array(m * m);
  for (let u = 0; u < n; u++) {
    const row = (u % m) * m;
    for (let block = 0; block < n; block += m) {
      for (let v = 0, i = u * n + block; v < m; v++, i++) {
        re[row + v]! += xRe[i]! * filter[i]!;
        im[row + v]! += xIm[i]! * filter[i]!;
      }
    }
  }
  const inv = 1 / (k * k);
  for (let i = 0; i < m * m; i++) {
    re[i]! *= inv;
    im[i]! *= inv;
  }
  return { re, im };
}

/** Low-pass and subsample to the 2^-J grid, then crop the grid points that lie on the image (not the padding). */
function writeLowpass(b: Bank, re: Float64Array, im: Float64Array, r: number, out: Float32Array): void {
  const J = b.o.J,
    G = scatteringGrid(b.o);
  const m = b.P >> J;
  const y = periodised(re, im, b.phi[r]!, b.P >> r, 1 << (J - r));
  fft2(y.re, y.im, m, true);
  const first = Math.ceil(b.pad / 2 ** J);
  for (let u = 0; u < G; u++) for (let v = 0; v < G; v++) out[u * G + v] = y.re[(u + first) * m + v + first]!;
}

const twiddles = new Map<number, { cos: Float64Array; sin: Float64Array; rev: Uint32Array }>();

function plan(n: number) {
  let p = twiddles.get(n);
  if (!p) {
    const bits = Math.log2(n);
    const rev = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      rev[i] = r;
    }
    const cos = new Float64Array(n / 2),
      sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) {
      cos[i] = Math.cos((2 * Math.PI * i) / n);
      sin[i] = Math.sin((2 * Math.PI * i) / n);
    }
    twiddles.set(n, (p = { cos, sin, rev }));
  }
  return p;
}

/** In-place radix-2 FFT of n values at `offset + i·stride`; the inverse is unnormalised here (fft2 divides). */
function fft1(re: Float64Array, im: Float64Array, n: number, offset: number, stride: number, inverse: boolean): void {
  const { cos, sin, rev } = plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i]!;
    if (j > i) {
      const a = offset + i * stride,
        b = offset + j * stride;
      const tr = re[a]!,
        ti = im[a]!;
      re[a] = re[b]!;
      im[a] = im[b]!;
      re[b] = tr;
      im[b] = ti;
    }
  }
  const sign = inverse ? 1 : -1;
  for (let size = 2; size <= n; size *= 2) {
    const half = size / 2,
      step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step]!,
          wi = sign * sin[k * step]!;
        const a = offset + (start + k) * stride,
          b = offset + (start + k + half) * stride;
        const br = re[b]! * wr - im[b]! * wi,
          bi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - br;
        im[b] = im[a]! - bi;
        re[a]! += br;
        im[a]! += bi;
      }
    }
  }
}

/** In-place 2-D DFT of an n×n complex array (n a power of two); the inverse divides by n². */
export function fft2(re: Float64Array, im: Float64Array, n: number, inverse: boolean): void {
  for (let r = 0; r < n; r++) fft1(re, im, n, r * n, 1, inverse);
  for (let c = 0; c < n; c++) fft1(re, im, n, c, n, inverse);
  if (inverse) {
    const inv = 1 / (n * n);
    for (let i = 0; i < n * n; i++) {
      re[i]! *= inv;
      im[i]! *= inv;
    }
  }
}

/**
 * Group normalisation of each example's scattering channels (Wu & He 2018, without the learned affine; Tramèr &
 * Boneh's input normalisation for ScatterNet): channels are cut into `groups` consecutive groups and each group of
 * each example is shifted and scaled to mean 0, variance 1 over its channels × grid. Per example, so it uses no other
 * example's data: no privacy cost. In place; returns `features`.
 */
export function groupNormalize(
  features: Float32Array,
  n: number,
  channels: number,
  groups: number,
  eps = 1e-5,
): Float32Array {
  if (!(Number.isInteger(groups) && groups >= 1 && channels % groups === 0))
    throw new RangeError(`groupNormalize: ${channels} channels do not split into ${groups} groups`);
  const per = features.length / n;
  if (!Number.isInteger(per) || per % channels !== 0)
    throw new RangeError(`groupNormalize: ${features.length} values are not ${n} examples of ${channels} channels`);
  const g = per / groups;
  for (let k = 0; k < n; k++) {
    for (let q = 0; q < groups; q++) {
      const v = features.subarray(k * per + q * g, k * per + (q + 1) * g);
      let mean = 0;
      for (let i = 0; i < g; i++) mean += v[i]!;
      mean /= g;
      let variance = 0;
      for (let i = 0; i < g; i++) variance += (v[i]! - mean) ** 2;
      const scale = 1 / Math.sqrt(variance / g + eps);
      for (let i = 0; i < g; i++) v[i] = (v[i]! - mean) * scale;
    }
  }
  return features;
}
