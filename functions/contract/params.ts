/** Parameters several routes share. Path parameters are found by name from the path template (route.ts). */
import { NAME_PATTERN } from '../registry/model-record.ts';
import type { Param } from './route.ts';

const NAME = { type: 'string', pattern: NAME_PATTERN.source };

/** Every path parameter a template may name, as a route reads it (overridden per route: Route.pathParams). */
export const PATH_PARAMS: Record<string, Param> = {
  name: { name: 'name', in: 'path', required: true, schema: { type: 'string' }, description: 'model name' },
  version: {
    name: 'version',
    in: 'path',
    required: true,
    schema: { type: 'string' },
    description: 'a version, or an alias name (latest, stable, …)',
  },
  alias: {
    name: 'alias',
    in: 'path',
    required: true,
    schema: NAME,
    description: 'alias name; `latest` pins it until the next upload',
  },
  task: { name: 'task', in: 'path', required: true, schema: { type: 'string' }, description: 'task name' },
  device: { name: 'device', in: 'path', required: true, schema: NAME, description: 'an enrolled device id' },
  round: {
    name: 'round',
    in: 'path',
    required: true,
    schema: { type: 'integer', minimum: 1 },
    description: 'the round the device is in',
  },
};

/** A path parameter that must be a valid name (a model or version being created). */
export const nameParam = (description: string): Partial<Param> => ({ schema: NAME, description });

export const ifNoneMatch: Param = {
  name: 'If-None-Match',
  in: 'header',
  required: false,
  schema: { type: 'string' },
  description: 'the ETag you have: 304 when it is still current',
};

export const deviceQuery: Param = {
  name: 'device',
  in: 'query',
  required: true,
  schema: NAME,
  description: 'the device asking (it signs the request)',
};
