/**
 * Records one inference run everywhere it is counted: the Triton statistics, the Prometheus series and the Analytics
 * Engine data point. Called by the registry after each run; it never throws, so no metric can fail a request.
 */
import type { VersionRecord } from '../registry/model-record.ts';
import { writeInferenceEvent } from './analytics.ts';
import { batchSize } from './batch-size.ts';
import { batchSizes, inferenceDuration, inferences, modelStats } from './isolate-metrics.ts';
import type { RunTimer } from './run-timing.ts';

export function recordInference(
  env: Env,
  record: VersionRecord,
  inputs: readonly { shape: readonly number[] }[],
  timer: RunTimer,
  ok: boolean,
): void {
  try {
    const p = timer.phases();
    const batch = batchSize(record.inputs, inputs);
    modelStats.record(record.model, record.version, record.sha256, {
      ok,
      batch,
      totalMs: p.total,
      queueMs: p.queue,
      inputMs: p.input,
      inferMs: p.infer,
      outputMs: p.output,
      leader: timer.run.leader,
      executionBatch: timer.run.rows || batch,
    });
    inferences.inc({ model: record.model, outcome: ok ? 'success' : 'fail' });
    if (ok) {
      inferenceDuration.observe(p.total / 1000, { model: record.model });
      batchSizes.observe(batch, { model: record.model });
    }
    // Optional at run time: an app built on an env without the binding (app.request in tests) just skips the point.
    writeInferenceEvent(env.INFERENCE_EVENTS as AnalyticsEngineDataset | undefined, {
      model: record.model,
      version: record.version,
      sha256: record.sha256,
      ok,
      latencyMs: p.total,
      batch,
    });
  } catch (e) {
    console.warn('recording an inference failed:', e);
  }
}
