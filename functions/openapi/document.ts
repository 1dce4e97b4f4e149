/**
 * The OpenAPI 3.1 document of the edge's HTTP API (served at GET /openapi.json), built from the route declarations
 * (functions/contract): paths, parameters, request bodies, answers and refusals.
 * - Schemas are the contract's zod schemas turned into JSON Schema draft 2020-12 by zod's `z.toJSONSchema`: request
 *   bodies in input mode (defaults shown, defaulted fields optional) — what is documented is what the route
 *   validates — and answers in output mode; each is a component under the name the contract gives it.
 * - Errors are `{ "error": "…" }` (middleware/errors.ts) with the statuses each route can answer and when: its own,
 *   and those of the middleware its declaration implies (contract/errors.ts).
 * What JSON Schema cannot say is said in words: checks against the model's metadata, the binary tensor data framing,
 * the SecAgg+ wire format, limits read from the Worker's variables.
 */
import type { z } from 'zod';
import { ROUTES } from '../contract/index.ts';
import { routeErrors } from '../contract/errors.ts';
import { PATH_PARAMS } from '../contract/params.ts';
import { type Reply, type Route, pathParamNames } from '../contract/route.ts';
import { errorBody } from '../contract/schemas/models.ts';
import { nameOf } from '../contract/schemas/named.ts';
import { SERVER_VERSION } from '../routes/health.ts';
import { HEADERS, type Json, SECURITY_SCHEMES, TAGS, jsonSchema } from './components.ts';

/** Schemas the document refers to, by component name, with the mode each is shown in. */
class Components {
  readonly #schemas = new Map<string, { schema: z.ZodType; io: 'input' | 'output' }>();

  ref(schema: z.ZodType, io: 'input' | 'output'): Json {
    const name = nameOf(schema);
    const had = this.#schemas.get(name);
    if (had && (had.schema !== schema || had.io !== io)) throw new Error(`openapi: two schemas named ${name}`);
    this.#schemas.set(name, { schema, io });
    return { $ref: `#/components/schemas/${name}` };
  }

  build(): Record<string, Json> {
    return Object.fromEntries([...this.#schemas].map(([name, { schema, io }]) => [name, jsonSchema(schema, io)]));
  }
}

const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
const bytes = (description: string) => ({
  'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream', description } },
});

function reply(r: Reply, components: Components): Json {
  const content: Json = {
    ...(r.json && { 'application/json': { schema: components.ref(r.json, 'output') } }),
    ...(r.object && { 'application/json': { schema: { type: 'object' } } }),
    ...(r.bytes !== undefined && bytes(r.bytes)),
    ...(r.text !== undefined && { 'text/plain': { schema: { type: 'string', description: r.text } } }),
    ...(r.events !== undefined && { 'text/event-stream': { schema: { type: 'string', description: r.events } } }),
  };
  const headers: Json = { 'X-Request-Id': header('X-Request-Id') };
  for (const [name, component] of Object.entries(r.headers ?? {})) headers[name] = header(component);
  return { description: r.description, ...(Object.keys(content).length ? { content } : {}), headers };
}

function errorResponse(status: number, when: string, components: Components): Json {
  const headers: Json = { 'X-Request-Id': header('X-Request-Id') };
  if (status === 429) headers['Retry-After'] = header('Retry-After');
  if (status === 401 && when.includes('WWW-Authenticate')) headers['WWW-Authenticate'] = header('WWW-Authenticate');
  return {
    description: when,
    headers,
    content: { 'application/json': { schema: components.ref(errorBody, 'output') } },
  };
}

function requestBody(route: Route, components: Components): Json | undefined {
  const body = route.body;
  if (!body) return undefined;
  if (body.type === 'json')
    return {
      required: !body.optional,
      content: { 'application/json': { schema: components.ref(body.schema, 'input') } },
    };
  return {
    required: true,
    content: {
      ...(body.json && { 'application/json': { schema: components.ref(body.json, 'input') } }),
      ...bytes(body.description),
    },
  };
}

function operation(id: string, route: Route, components: Components): Json {
  const responses: Record<string, Json> = {};
  for (const [status, r] of Object.entries(route.responses)) responses[status] = reply(r, components);
  for (const [status, when] of Object.entries(routeErrors(route)).sort(([a], [b]) => +a - +b))
    responses[status] = errorResponse(+status, when, components);
  const params = [
    ...pathParamNames(route.path).map((name) => {
      const shared = PATH_PARAMS[name];
      if (!shared) throw new Error(`openapi: no path parameter ${name} (contract/params.ts)`);
      return { ...shared, ...route.pathParams?.[name] };
    }),
    ...(route.params ?? []),
  ];
  const body = requestBody(route, components);
  return {
    operationId: id,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(route.security ? { security: [{ [route.security]: [] }] } : {}),
    ...(params.length ? { parameters: params } : {}),
    ...(body ? { requestBody: body } : {}),
    responses,
  };
}

let built: Json | undefined;

/** The document (built once per isolate); `origin` fills `servers` so tools call the edge that served it. */
export function openApiDocument(origin?: string): Json {
  built ??= build();
  return origin ? { ...built, servers: [{ url: origin }] } : built;
}

function build(): Json {
  const components = new Components();
  const paths: Record<string, Record<string, Json>> = {};
  for (const [id, route] of Object.entries(ROUTES) as [string, Route][])
    (paths[route.path] ??= {})[route.method] = operation(id, route, components);
  return {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'Fedge edge API',
      version: SERVER_VERSION,
      summary: 'OIP v2 inference on Cloudflare Workers, a model registry, and federated tasks with SecAgg+',
      description: [
        'Every error is `{"error": "…"}` with a 4xx status (a 5xx only for a bug, naming the request id, or 503 from readiness); a refused request changes nothing.',
        'Every answer carries X-Request-Id. Every route is rate limited per client (429 + Retry-After).',
        'Browsers: CORS for FEDGE_CORS_ORIGINS; admin routes answer only origins listed by name.',
        "Request bodies are the routes' own zod schemas; limits come from the Worker's variables (wrangler.toml [vars]).",
        'Prose: docs/http-api.md in the repository.',
      ].join(' '),
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: TAGS,
    paths,
    components: { schemas: components.build(), headers: HEADERS, securitySchemes: SECURITY_SCHEMES },
  };
}
