/**
 * Two OIP/Triton extensions over this isolate's counters (functions/metrics) — `statistics` and the
 * `model_repository` index — and GET /metrics in the Prometheus text format. Registered before the inference
 * routes, so `/v2/models/stats` is this route and not the metadata of a model named "stats" (Triton's URL scheme has
 * the same ambiguity).
 */
import { LATENCY_BUCKETS } from '../metrics/isolate-metrics.ts';
import { defineRoutes } from './route.ts';
import * as S from './schemas/stats.ts';

const TAG = 'Monitoring';

/** Most bytes of a repository index body ({"ready": true}). */
export const INDEX_BODY_BYTES = 4 * 1024;

const PER_ISOLATE =
  'Counters are per isolate and in memory (Cloudflare runs many isolates and recycles them); the durable record is the Workers Analytics Engine dataset fedge_inference.';

export const monitoringRoutes = defineRoutes({
  getAllModelStats: {
    method: 'get',
    path: '/v2/models/stats',
    tag: TAG,
    summary: 'Statistics of every version of every model (Triton statistics extension)',
    description: `Triton's statistics extension: one entry per version in the catalog, zeros for a version this isolate never ran. ${PER_ISOLATE}`,
    responses: { 200: { description: 'the statistics', json: S.modelStatsResponse } },
  },
  getModelStats: {
    method: 'get',
    path: '/v2/models/{name}/stats',
    tag: TAG,
    summary: 'Statistics of every version of a model',
    description: PER_ISOLATE,
    responses: { 200: { description: 'the statistics', json: S.modelStatsResponse } },
    errors: { 404: 'unknown model' },
  },
  getVersionStats: {
    method: 'get',
    path: '/v2/models/{name}/versions/{version}/stats',
    tag: TAG,
    summary: 'Statistics of a version (or of what an alias points at)',
    description: PER_ISOLATE,
    responses: { 200: { description: 'the statistics (one entry)', json: S.modelStatsResponse } },
    errors: { 404: 'unknown model, or no such version or alias' },
  },
  repositoryIndex: {
    method: 'post',
    path: '/v2/repository/index',
    tag: TAG,
    summary: 'Every version in the catalog and whether this isolate has it loaded (model_repository extension)',
    description:
      "READY when this isolate holds the version's ONNX Runtime session; UNAVAILABLE (with a reason) otherwise — it loads on its first inference or …/ready. The body is optional.",
    body: {
      type: 'json',
      schema: S.repositoryIndexBody,
      optional: true,
      limit: { what: 'repository index body', bytes: INDEX_BODY_BYTES },
    },
    responses: { 200: { description: 'the index', json: S.repositoryIndex } },
  },
  getMetrics: {
    method: 'get',
    path: '/metrics',
    tag: TAG,
    summary: 'Prometheus metrics of this isolate (text exposition format 0.0.4)',
    description: `fedge_http_requests_total{method,route,status} (route = the route pattern), fedge_inference_requests_total{model,outcome}, fedge_inference_duration_seconds{model} (histogram, buckets ${LATENCY_BUCKETS.join(', ')} s), fedge_inference_batch_size{model} (histogram), fedge_sessions_loaded, fedge_isolate_start_time_seconds. ${PER_ISOLATE}`,
    responses: { 200: { description: 'the metrics', text: 'Prometheus text exposition format, version 0.0.4' } },
  },
});
