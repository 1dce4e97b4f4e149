/**
 * Two OIP/Triton extensions over this isolate's counters (functions/metrics):
 * - `statistics` (Triton protocol/extension_statistics.md): GET /v2/models[/{name}[/versions/{v}]]/stats answers
 *   `{model_stats: [...]}`, one entry per version, zeros for a version this isolate never ran.
 * - `model_repository` (Triton protocol/extension_model_repository.md), its index only: POST /v2/repository/index
 *   lists every version in the catalog, READY when this isolate holds its ONNX Runtime session, else UNAVAILABLE
 *   with the reason (it loads on its first inference or …/ready; load/unload are not offered: sessions are an LRU).
 * (GET /metrics is handled in metrics.ts.)
 */
import type { Context } from 'hono';
import type { monitoringRoutes } from '../contract/monitoring.ts';
import type { RepositoryEntry } from '../contract/schemas/stats.ts';
import { fail } from '../middleware/errors.ts';
import { quote } from '../inference/quote.ts';
import { modelStats } from '../metrics/isolate-metrics.ts';
import type { ModelStat } from '../metrics/model-stats.ts';
import type { ModelSummary, VersionRecord } from '../registry/model-record.ts';
import { services } from '../services.ts';
import { getMetrics } from './metrics.ts';
import type { Handler, Handlers } from './register.ts';

type Ctx = Context<{ Bindings: Env }>;
/** What helpers read of a request, whatever else its route's middleware set (e.g. jsonBody's `body`). */
type Req = Pick<Ctx, 'env' | 'req'>;
/** Every version of these models, resolved to its record (the resolution cache answers repeats). */
async function versions(c: Req, models: ModelSummary[]): Promise<VersionRecord[]> {
  const { registry } = services(c.env);
  return Promise.all(models.flatMap((m) => m.versions.map((v) => registry.resolve(m.name, v))));
}

async function allModels(c: Req): Promise<ModelSummary[]> {
  const { registry } = services(c.env);
  return registry.listModels();
}

async function oneModel(c: Req, name: string): Promise<ModelSummary> {
  const { registry } = services(c.env);
  const summary = await registry.getModel(name);
  if (!summary) fail(404, `unknown model ${quote(name)}`);
  return summary;
}

const statsOf = (records: VersionRecord[]): { model_stats: ModelStat[] } => ({
  model_stats: records.map((r) => modelStats.get(r.model, r.version, r.sha256)),
});

const repositoryIndex: Handler<typeof monitoringRoutes.repositoryIndex> = async (c) => {
  const readyOnly = c.var.body.ready === true;
  const { registry } = services(c.env);
  const entries: RepositoryEntry[] = (await versions(c, await allModels(c))).map((r) =>
    registry.sessions.has(r.sha256)
      ? { name: r.model, version: r.version, state: 'READY' }
      : {
          name: r.model,
          version: r.version,
          state: 'UNAVAILABLE',
          reason: 'not loaded in this isolate (loads on its first inference or …/ready)',
        },
  );
  return c.json(readyOnly ? entries.filter((e) => e.state === 'READY') : entries);
};

export const monitoringHandlers: Handlers<typeof monitoringRoutes> = {
  getAllModelStats: async (c) => c.json(statsOf(await versions(c, await allModels(c)))),
  getModelStats: async (c) => c.json(statsOf(await versions(c, [await oneModel(c, c.req.param('name')!)]))),
  getVersionStats: async (c) => {
    const record = await services(c.env).registry.resolve(c.req.param('name')!, c.req.param('version'));
    return c.json(statsOf([record]));
  },
  repositoryIndex,
  getMetrics,
};
