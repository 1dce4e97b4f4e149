/**
 * OIP v2 server health and metadata, and GET /openapi.json. Readiness loads the default model, so the first inference
 * is warm.
 */
import type { healthRoutes } from '../contract/health.ts';
import { DEFAULT_MODEL } from '../registry/default-models.ts';
import { executionProvider } from '../inference/ort-runtime.ts';
import { errorJson } from '../middleware/errors.ts';
import { openApiDocument } from '../openapi/document.ts';
import { services } from '../services.ts';
import type { Handlers } from './register.ts';

export const SERVER_NAME = 'fedge';
export const SERVER_VERSION = '0.1.0';
/** OIP/Triton extensions served: binary tensors (inference.ts), statistics and the repository index (stats.ts). */
export const EXTENSIONS = ['binary_tensor_data', 'statistics', 'model_repository'];

export const healthHandlers: Handlers<typeof healthRoutes> = {
  getServerMetadata: (c) => c.json({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS }),
  getLive: (c) => c.json({ live: true }),
  getReady: async (c) => {
    const { registry } = services(c.env);
    try {
      await registry.load(await registry.resolve(DEFAULT_MODEL));
    } catch (e) {
      console.error('not ready:', e);
      return errorJson(c, 503, `not ready: ${(e as Error).message}`);
    }
    return c.json({ ready: true, default_model: DEFAULT_MODEL, execution_provider: executionProvider() });
  },
  // The document's `servers` is this origin, so tools call the edge that served it.
  getOpenApi: (c) => c.json(openApiDocument(new URL(c.req.url).origin)),
};
