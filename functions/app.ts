/**
 * The Worker's route chain: middleware every request passes, then every route of the contract (functions/contract)
 * registered with its handler (routes/register.ts).
 */
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { ROUTES } from './contract/index.ts';
import { corsPolicy } from './middleware/cors.ts';
import { notFound, onError } from './middleware/errors.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { bodyBudget } from './middleware/read-body.ts';
import { drainUnreadBody } from './middleware/drain-body.ts';
import { countRequests } from './middleware/count-requests.ts';
import { healthHandlers } from './routes/health.ts';
import { inferenceHandlers } from './routes/inference.ts';
import { generationHandlers } from './routes/generation.ts';
import { modelHandlers } from './routes/models.ts';
import { monitoringHandlers } from './routes/stats.ts';
import { taskHandlers } from './routes/tasks.ts';
import { register } from './routes/register.ts';

const app = new Hono<{ Bindings: Env }>()
  .use(countRequests())
  .use(requestId())
  .use(drainUnreadBody())
  .use(corsPolicy())
  .use(rateLimit())
  .use(bodyBudget());

register(app, ROUTES, {
  ...healthHandlers,
  ...monitoringHandlers,
  ...inferenceHandlers,
  ...generationHandlers,
  ...modelHandlers,
  ...taskHandlers,
});

app.onError(onError);
app.notFound(notFound);

export default app;
