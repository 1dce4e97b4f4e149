/** GET /openapi.json: the OpenAPI 3.1 document of this API (functions/openapi/document.ts), `servers` = this origin. */
import { Hono } from 'hono';
import { openApiDocument } from '../openapi/document.ts';

export const openApiRoutes = new Hono<{ Bindings: Env }>().get('/openapi.json', (c) =>
  c.json(openApiDocument(new URL(c.req.url).origin)),
);
