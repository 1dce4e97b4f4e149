/**
 * Gaussian noise for DP-SGD from the CSPRNG: Box–Muller over 53-bit uniforms from crypto.getRandomValues.
 * Caveat (Mironov, CCS 2012, for Laplace; the same holds for Gaussian): floating-point samples are not exactly
 * Gaussian — their low-order bits are irregular, and a floating-point noisy value can in principle leak more than
 * the analysis says. The effect is far below the statistical noise at the σ·C scales used here, and this is what
 * Opacus and TF Privacy do; a bit-exact alternative is the discrete Gaussian in federated/dp.
 */
import { randomWords, unitFloat } from '../../federated/random.ts';

export function gaussianNoise(n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  const words = randomWords(4 * Math.ceil(n / 2));
  for (let i = 0, w = 0; i < n; i += 2, w += 4) {
    // two 53-bit uniforms: u1 in (0, 1] (its log is taken), u2 in [0, 1)
    const u1 = unitFloat(words[w]!, words[w + 1]!) + 2 ** -53;
    const u2 = unitFloat(words[w + 2]!, words[w + 3]!);
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
