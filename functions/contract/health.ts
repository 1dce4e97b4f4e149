/** Server metadata, liveness, readiness, and this API's own OpenAPI document. */
import * as R from './schemas/models.ts';
import { defineRoutes } from './route.ts';

export const healthRoutes = defineRoutes({
  getServerMetadata: {
    method: 'get',
    path: '/v2',
    tag: 'Inference (OIP v2)',
    summary: 'Server metadata (name, version, extensions)',
    responses: { 200: { description: 'server metadata', json: R.serverMetadata } },
  },
  getLive: {
    method: 'get',
    path: '/v2/health/live',
    tag: 'Inference (OIP v2)',
    summary: 'Liveness',
    responses: { 200: { description: 'live', json: R.live } },
  },
  getReady: {
    method: 'get',
    path: '/v2/health/ready',
    tag: 'Inference (OIP v2)',
    summary: 'Readiness: loads the default model, so the first inference is warm',
    responses: { 200: { description: 'ready', json: R.ready } },
    errors: { 503: 'the default model could not be resolved or loaded' },
  },
  getOpenApi: {
    method: 'get',
    path: '/openapi.json',
    tag: 'Documents',
    summary: 'This document (OpenAPI 3.1)',
    responses: { 200: { description: 'the OpenAPI document', object: true } },
  },
});
