/**
 * What a caller gives every trainer (the classifier Trainer, the LanguageModelTrainer) and the error they throw —
 * apart from the DP-SGD code (dp-sgd.ts), so the shipped declarations of the trainers' public types never reach
 * TensorFlow.js's types (an optional peer dependency: an app without it must still type-check).
 */
import type { PrivacyLedger } from '../privacy/ledger.ts';

export class TrainerError extends Error {
  override name = 'TrainerError';
}

export interface PrivacyOptions {
  l2NormClip: number;
  /** σ; or give `epsilon` and the Trainer derives σ for this run's sampling rate and steps. */
  noiseMultiplier?: number | undefined;
  epsilon?: number | undefined;
  delta: number;
  ledger?: PrivacyLedger | undefined;
  /** Which of the device's data sources this run spends budget on (default 'default'). */
  source?: string | undefined;
  /**
   * Hold the run's charge instead of spending it (FitResult.reservation): for a caller that learns later whether the
   * trained weights leave the device — a federated round commits it once its update may be unmasked, else releases it.
   */
  reserve?: boolean | undefined;
}

export type OptimizerName = 'sgd' | 'momentum' | 'adam';
