/**
 * The durable record of inferences: one Workers Analytics Engine data point per inference, when the Worker has the
 * INFERENCE_EVENTS binding (`[[analytics_engine_datasets]]`, dataset fedge_inference). In-memory counters die with
 * their isolate; these points are kept by Cloudflare and queried with SQL across every isolate.
 * Layout (SQL columns): index1 = model; blob1 = model, blob2 = version, blob3 = status (success | fail),
 * blob4 = sha256; double1 = latency in ms, double2 = batch size.
 * writeDataPoint is fire-and-forget; a binding that throws is logged and ignored: metrics never fail a request.
 * Locally (wrangler dev, Miniflare, the tests) the binding exists but drops every point.
 */
export interface InferenceEvent {
  model: string;
  version: string;
  sha256: string;
  ok: boolean;
  latencyMs: number;
  batch: number;
}

export function writeInferenceEvent(dataset: AnalyticsEngineDataset | undefined, e: InferenceEvent): void {
  if (!dataset) return;
  try {
    dataset.writeDataPoint({
      indexes: [e.model],
      blobs: [e.model, e.version, e.ok ? 'success' : 'fail', e.sha256],
      doubles: [e.latencyMs, e.batch],
    });
  } catch (err) {
    console.warn('analytics engine write failed:', err);
  }
}
