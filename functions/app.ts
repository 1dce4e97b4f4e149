/** The Worker's route chain. `AppType` lets a typed client (hono/client `hc`) follow the server. */
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { corsPolicy } from './middleware/cors.ts';
import { notFound, onError } from './middleware/errors.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { bodyBudget } from './middleware/read-body.ts';
import { drainUnreadBody } from './middleware/drain-body.ts';
import { healthRoutes } from './routes/health.ts';
import { inferenceRoutes } from './routes/inference.ts';
import { modelRoutes } from './routes/models.ts';
import { taskRoutes } from './routes/tasks.ts';
import { openApiRoutes } from './routes/openapi.ts';
import { statsRoutes } from './routes/stats.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { countRequests } from './middleware/count-requests.ts';

const app = new Hono<{ Bindings: Env }>()
  .use(countRequests())
  .use(requestId())
  .use(drainUnreadBody())
  .use(corsPolicy())
  .use(rateLimit())
  .use(bodyBudget())
  .route('/v2', healthRoutes)
  .route('/v2', statsRoutes) // before inferenceRoutes: /v2/models/stats is not a model named "stats"
  .route('/v2', inferenceRoutes)
  .route('/v1/models', modelRoutes)
  .route('/v1/tasks', taskRoutes)
  .route('/', openApiRoutes)
  .route('/', metricsRoutes);

app.onError(onError);
app.notFound(notFound);

export type AppType = typeof app;
export default app;
