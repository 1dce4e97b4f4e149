/** OIP v2 server health and metadata. Readiness loads the default model, so the first inference is warm. */
import { Hono } from 'hono';
import { DEFAULT_MODEL } from '../registry/default-models.ts';
import { executionProvider } from '../inference/ort-runtime.ts';
import { errorJson } from '../middleware/errors.ts';
import { services } from '../services.ts';

export const SERVER_NAME = 'fedge';
export const SERVER_VERSION = '0.1.0';
/** OIP/Triton extensions served: binary tensors (inference.ts), statistics and the repository index (stats.ts). */
export const EXTENSIONS = ['binary_tensor_data', 'statistics', 'model_repository'];

export const healthRoutes = new Hono<{ Bindings: Env }>()
  .get('/', (c) => c.json({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS }))
  .get('/health/live', (c) => c.json({ live: true }))
  .get('/health/ready', async (c) => {
    const { registry } = services(c.env);
    try {
      await registry.load(await registry.resolve(DEFAULT_MODEL));
    } catch (e) {
      console.error('not ready:', e);
      return errorJson(c, 503, `not ready: ${(e as Error).message}`);
    }
    return c.json({ ready: true, default_model: DEFAULT_MODEL, execution_provider: executionProvider() });
  });
