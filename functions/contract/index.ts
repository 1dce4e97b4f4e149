/**
 * Every route of the edge, by operationId, in the order Hono registers them: monitoring before inference, so
 * `/v2/models/stats` is not the metadata of a model named "stats".
 */
import { generationRoutes } from './generation.ts';
import { healthRoutes } from './health.ts';
import { inferenceRoutes } from './inference.ts';
import { modelRoutes } from './models.ts';
import { monitoringRoutes } from './monitoring.ts';
import { taskRoutes } from './tasks.ts';

export const ROUTES = {
  ...healthRoutes,
  ...monitoringRoutes,
  ...inferenceRoutes,
  ...generationRoutes,
  ...modelRoutes,
  ...taskRoutes,
};

export type Routes = typeof ROUTES;
export type RouteId = keyof Routes;
