/**
 * The one-run DP audit of the Trainer (federated/dp/one-run-audit.ts holds the bound): MNIST digits plus m canaries,
 * each put into the training set with probability 1/2, one DP-SGD run through the real Trainer (Poisson sampling,
 * ghost-norm clipping, Gaussian noise, the RDP accountant), then a membership guess for every canary from the
 * trained model and the ε lower bound beside the accountant's ε.
 *
 * The canaries are built to be easy to detect, so that the audit has power: the model
 * is softmax regression over the 784 pixels plus m extra "marker" inputs that every real digit leaves at 0. Canary i
 * is a blank image with marker i set to {@link MARKER} and a random label — an out-of-distribution example whose
 * gradient lands only on its own marker's weights (and the shared bias): the input-space counterpart of the "Dirac"
 * gradient canaries of Steinke et al.'s white-box audits, which the Trainer's example-only API cannot take directly.
 * No other example moves those weights, so without noise an included canary (sampled at least once) is told apart
 * from an excluded one exactly; with noise, only what clipping and σ let through is left.
 *
 * The score is a loss difference the auditor gets from the model's outputs alone: loss of (blank image, label i)
 * minus loss of (canary i, label i) — how much the marker lowers the canary's loss. The weights start at zero, so an
 * excluded canary's marker weights hold only DP noise.
 *
 * Limits. This audits the Trainer's DP-SGD path (sampling, clipping, noise, accounting) on a convex model whose
 * canaries do not interfere; it says nothing about other models' memorisation. One run of 1,000 canaries can show at
 * most ε ≈ 5 at 95 % however leaky the run, and one-run audits are loose against real DP: a bound far below the
 * accountant's ε is expected and certifies nothing. The Trainer derives its sampling rate B/N and steps from N, so
 * they move slightly with the number of canaries included (the accountant treats them as public, as Opacus does);
 * the effect on a canary's influence is O(1/N).
 */
import { Trainer } from '../client-sdk/training/trainer.ts';
import { MODEL_SPEC_FORMAT, type ModelSpec, type NamedWeight, parameterShapes } from '../federated/model/model-spec.ts';
import { type GuessRule, type OneRunAuditResult, oneRunAudit, sampleInclusion } from '../federated/dp/one-run-audit.ts';
import { PIXELS, loadMnist } from '../models/data/mnist.ts';
import { seededRandom } from '../federated/seeded-random.ts';

/**
 * The value a canary's marker input takes (real digits: pixels in [0, 1], markers 0). A canary's gradient is
 * (p − e_y) ⊗ (marker, 1), so a²/(a² + 1) = 16/17 of its squared norm lands on its marker's weights, not the bias.
 */
export const MARKER = 4;
/**
 * σ of the "noise off" run. The Trainer refuses σ ≤ 0 (and rightly has no switch for it), so this is a σ it accepts
 * that makes the noise negligible: clipping, Poisson sampling and the accountant run as always, the noise is
 * N(0, (1e-6·C)²) per coordinate — effectively gone.
 */
export const NOISE_OFF_SIGMA = 1e-6;
/** Guess rules, as fractions of m: k₊ = k₋ = f·m. Fixed here, before any run; tested with Bonferroni. */
export const GUESS_FRACTIONS = [0.02, 0.05, 0.1, 0.2, 0.4] as const;
const CLASSES = 10;

export interface AuditConfig {
  /** m */
  canaries: number;
  /** MNIST training digits used besides the canaries (≤ 8,000) */
  digits: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  l2NormClip: number;
  /** target ε of the noise-on run (the Trainer derives σ); the accountant's ε is what is reported */
  epsilon: number;
  delta: number;
  /** seeds the canaries' inclusion coins and labels */
  seed: number;
  confidence?: number | undefined;
}

export interface Progress {
  /** 'noise on', 'noise off', 'quarter noise' or 'σ <value>' */
  run: string;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
}

export interface AuditRun {
  noise: 'on' | 'off' | number;
  noiseMultiplier: number;
  /** the accountant's ε for this run (FitResult.epsilon) */
  accountantEpsilon: number;
  audit: OneRunAuditResult;
  /** accuracy on the 2,000 held-out digits (marker inputs 0) */
  heldOutAccuracy: number;
  steps: number;
  seconds: number;
}

export interface AuditReport {
  config: AuditConfig & { marker: number; guessFractions: readonly number[]; noiseOffSigma: number };
  included: number;
  /** the claim the audit tests: the noise-on run's accountant ε */
  claimedEpsilon: number;
  noiseOn: AuditRun;
  noiseOff: AuditRun;
  /**
   * The audit's power between the two: a run with a quarter of the noise-on run's σ, judged against the same claim
   * — what a bug that silently dropped three quarters of the noise (or an accountant 4× too optimistic about σ)
   * would look like.
   */
  quarterNoise: AuditRun;
}

/** Softmax regression over 784 pixels + m marker inputs. */
export function auditSpec(canaries: number): ModelSpec {
  return {
    format: MODEL_SPEC_FORMAT,
    name: 'dp-audit-softmax',
    inputShape: [PIXELS + canaries],
    inputName: 'input',
    outputName: 'probabilities',
    labels: Array.from({ length: CLASSES }, (_, i) => String(i)),
    layers: [{ type: 'dense', units: CLASSES, activation: 'softmax' }],
  };
}

/** The canaries' public design and secret coins, from one seed: inclusion first, then labels. */
export function drawCanaries(canaries: number, seed: number): { included: boolean[]; labels: Int32Array } {
  const random = seededRandom(seed);
  const included = sampleInclusion(canaries, random);
  const labels = Int32Array.from({ length: canaries }, () => Math.floor(random() * CLASSES));
  return { included, labels };
}

/** The first n digits, each followed by m zero markers, in a buffer with room for `extra` more rows. */
function padded(set: { x: Float32Array }, n: number, m: number, extra = 0): Float32Array {
  const width = PIXELS + m;
  const x = new Float32Array((n + extra) * width);
  for (let r = 0; r < n; r++) x.set(set.x.subarray(r * PIXELS, (r + 1) * PIXELS), r * width);
  return x;
}

/** The first n digits, then the included canaries (blank image, own marker, own label). */
function trainingSet(
  digits: { x: Float32Array; y: Int32Array },
  n: number,
  included: readonly boolean[],
  labels: Int32Array,
): { x: Float32Array; y: Int32Array } {
  const m = included.length;
  const ids = included.flatMap((inc, i) => (inc ? [i] : []));
  const x = padded(digits, n, m, ids.length);
  ids.forEach((c, j) => (x[(n + j) * (PIXELS + m) + PIXELS + c] = MARKER));
  return { x, y: Int32Array.from([...digits.y.subarray(0, n), ...ids.map((c) => labels[c]!)]) };
}

function logSoftmax(z: Float64Array, k: number): number {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let s = 0;
  for (const v of z) s += Math.exp(v - max);
  return z[k]! - max - Math.log(s);
}

/**
 * Score of every canary from the trained weights — exactly what querying the model on (blank image) and (canary)
 * returns: loss(blank, label) − loss(canary, label). Higher = more likely in.
 */
export function canaryScores(weights: NamedWeight[], labels: Int32Array): Float64Array {
  const [kernel, bias] = weights;
  const m = labels.length;
  const b = Float64Array.from(bias!.values);
  const z = new Float64Array(CLASSES);
  return Float64Array.from({ length: m }, (_, c) => {
    const row = (PIXELS + c) * CLASSES;
    for (let k = 0; k < CLASSES; k++) z[k] = b[k]! + MARKER * kernel!.values[row + k]!;
    return logSoftmax(z, labels[c]!) - logSoftmax(b, labels[c]!);
  });
}

function zeroWeights(spec: ModelSpec): NamedWeight[] {
  return parameterShapes(spec).map(({ name, shape }) => ({
    name,
    shape,
    values: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  }));
}

/** Guess rules for m canaries from {@link GUESS_FRACTIONS} (at least one guess each side). */
export function guessRules(canaries: number): GuessRule[] {
  return GUESS_FRACTIONS.map((f) => {
    const k = Math.max(1, Math.round(f * canaries));
    return { kPlus: k, kMinus: k };
  });
}

/**
 * One training run on the given canaries and its audit. `noise: 'on'` derives σ from the target ε; 'off' uses
 * {@link NOISE_OFF_SIGMA}; a number is σ itself (for checks of the audit's power between the two).
 */
export async function auditRun(
  config: AuditConfig,
  canaries: { included: boolean[]; labels: Int32Array },
  noise: 'on' | 'off' | number,
  show?: { onProgress?: (p: Progress) => void; label?: string },
): Promise<AuditRun> {
  const { train, test } = loadMnist();
  const m = config.canaries,
    n = Math.min(config.digits, train.n);
  const spec = auditSpec(m);
  const trainer = await Trainer.create({ spec, weights: zeroWeights(spec), backend: 'wasm' });
  try {
    const run =
      show?.label ?? (noise === 'on' ? 'noise on' : noise === 'off' ? 'noise off' : `σ ${noise.toPrecision(3)}`);
    const onProgress = show?.onProgress;
    const sigma = noise === 'on' ? undefined : noise === 'off' ? NOISE_OFF_SIGMA : noise;
    const fit = await trainer.fit(trainingSet(train, n, canaries.included, canaries.labels), {
      epochs: config.epochs,
      batchSize: config.batchSize,
      learningRate: config.learningRate,
      optimizer: 'momentum',
      privacy: {
        l2NormClip: config.l2NormClip,
        delta: config.delta,
        ...(sigma === undefined ? { epsilon: config.epsilon } : { noiseMultiplier: sigma }),
      },
      onProgress: onProgress && ((p) => onProgress({ run, ...p })),
    });
    const scores = canaryScores(trainer.weights(), canaries.labels);
    const audit = oneRunAudit({
      scores,
      included: canaries.included,
      rules: guessRules(m),
      delta: config.delta,
      confidence: config.confidence ?? 0.95,
    });
    return {
      noise,
      noiseMultiplier: fit.noiseMultiplier!,
      accountantEpsilon: fit.epsilon!,
      audit,
      heldOutAccuracy: trainer.evaluate({ x: padded(test, test.n, m), y: test.y }).accuracy,
      steps: fit.steps,
      seconds: fit.seconds,
    };
  } finally {
    trainer.dispose();
  }
}

/**
 * The audit on the same canaries and coins, three times: DP-SGD at the configured ε; the same run with the noise off
 * (σ = {@link NOISE_OFF_SIGMA}); and with a quarter of the noise-on σ. Needs a tfjs WASM backend set up
 * (useNodeWasm in Node).
 */
export async function runDpAudit(config: AuditConfig, onProgress?: (p: Progress) => void): Promise<AuditReport> {
  const canaries = drawCanaries(config.canaries, config.seed);
  const noiseOn = await auditRun(config, canaries, 'on', { onProgress });
  const noiseOff = await auditRun(config, canaries, 'off', { onProgress });
  const quarterNoise = await auditRun(config, canaries, noiseOn.noiseMultiplier / 4, {
    onProgress,
    label: 'quarter noise',
  });
  return {
    config: {
      ...config,
      confidence: config.confidence ?? 0.95,
      marker: MARKER,
      guessFractions: GUESS_FRACTIONS,
      noiseOffSigma: NOISE_OFF_SIGMA,
    },
    included: canaries.included.filter(Boolean).length,
    claimedEpsilon: noiseOn.accountantEpsilon,
    noiseOn,
    noiseOff,
    quarterNoise,
  };
}
