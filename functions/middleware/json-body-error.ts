/**
 * A request body that is not the JSON its route takes: 400 (errors.ts). Its own module, so errors.ts does not import
 * json-body.ts, which imports errors.ts (through content-type.ts).
 */
export class JsonBodyError extends Error {
  override name = 'JsonBodyError';
}
