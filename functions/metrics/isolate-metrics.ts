/**
 * This isolate's metrics: the Triton-style per-version statistics and the Prometheus series `GET /metrics` renders.
 * Everything here lives as long as the isolate (Cloudflare runs many, and recycles them); the durable record is the
 * Analytics Engine dataset (analytics.ts).
 */
import { Counter } from './counter.ts';
import { Histogram } from './histogram.ts';
import { type Metric, render } from './exposition.ts';
import { ModelStats } from './model-stats.ts';

/** Seconds; from 1 ms (a small model, warm) to 10 s (a load from R2 and a large run). */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export const modelStats = new ModelStats();

export const httpRequests = new Counter(
  'fedge_http_requests_total',
  'HTTP requests answered, by method, route pattern and status',
  ['method', 'route', 'status'],
);
export const inferences = new Counter(
  'fedge_inference_requests_total',
  'Inference runs, by model and outcome (success, fail)',
  ['model', 'outcome'],
);
export const inferenceDuration = new Histogram(
  'fedge_inference_duration_seconds',
  'Duration of successful inference runs (queue, load and compute), by model',
  LATENCY_BUCKETS,
  ['model'],
);
export const batchSizes = new Histogram(
  'fedge_inference_batch_size',
  'Batch items per successful inference run, by model',
  BATCH_BUCKETS,
  ['model'],
);

export const generatedTokens = new Counter(
  'fedge_generated_tokens_total',
  'Tokens generated (prompt tokens not counted), by model',
  ['model'],
);
export const generations = new Counter(
  'fedge_generations_total',
  'Generations ended, by model and finish reason (stop, length, aborted: the client went away; error)',
  ['model', 'finish_reason'],
);

const startedAt = Date.now() / 1000;

/** The exposition text; `sessionsLoaded` and `generationsRunning` are read when asked (their owners count them). */
export function renderMetrics(sessionsLoaded: number, generationsRunning: number): string {
  const gauge = (name: string, help: string, value: number) => ({ name, help, samples: () => [{ labels: {}, value }] });
  const metrics: Metric[] = [
    { type: 'counter', metric: httpRequests },
    { type: 'counter', metric: inferences },
    { type: 'histogram', metric: inferenceDuration },
    { type: 'histogram', metric: batchSizes },
    { type: 'counter', metric: generations },
    { type: 'counter', metric: generatedTokens },
    {
      type: 'gauge',
      metric: gauge('fedge_generations_running', 'Generations running in this isolate now', generationsRunning),
    },
    {
      type: 'gauge',
      metric: gauge(
        'fedge_sessions_loaded',
        'ONNX Runtime sessions this isolate holds (loaded or loading)',
        sessionsLoaded,
      ),
    },
    {
      type: 'gauge',
      metric: gauge(
        'fedge_isolate_start_time_seconds',
        'When this isolate started counting (Unix seconds): every series here is per isolate',
        startedAt,
      ),
    },
  ];
  return render(metrics);
}
