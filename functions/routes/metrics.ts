/**
 * GET /metrics: this isolate's counters in the Prometheus text exposition format (functions/metrics). Public, as
 * Triton's metrics port is: it names models, which GET /v2/models lists anyway. Per isolate: Cloudflare runs many,
 * so a scrape sees one of them; the durable, cross-isolate record is the Analytics Engine dataset.
 */
import { runningGenerations } from '../generation/generation-slots.ts';
import type { monitoringRoutes } from '../contract/monitoring.ts';
import { CONTENT_TYPE } from '../metrics/exposition.ts';
import { renderMetrics } from '../metrics/isolate-metrics.ts';
import { services } from '../services.ts';
import type { Handler } from './register.ts';

export const getMetrics: Handler<typeof monitoringRoutes.getMetrics> = (c) =>
  c.body(renderMetrics(services(c.env).registry.sessions.size, runningGenerations()), 200, {
    'Content-Type': CONTENT_TYPE,
    'Cache-Control': 'no-store',
  });
