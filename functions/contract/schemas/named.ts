/**
 * Names of the contract's schemas: a schema's name is its OpenAPI component (#/components/schemas/<name>) and its
 * type in the SDK (client-sdk/edge/contract.ts). Kept beside zod's registry, not in it: a schema with a zod `id`
 * would be split into `$defs` by z.toJSONSchema.
 */
import type { z } from 'zod';

const names = new Map<z.ZodType, string>();

/** `schema`, now known by `name`. */
export function named<S extends z.ZodType>(name: string, schema: S): S {
  const had = names.get(schema);
  if (had !== undefined && had !== name) throw new Error(`contract: schema ${had} named again as ${name}`);
  names.set(schema, name);
  return schema;
}

/** The name of a schema of the contract; throws for one never named (a route must answer with a named schema). */
export function nameOf(schema: z.ZodType): string {
  const name = names.get(schema);
  if (name === undefined) throw new Error('contract: a route uses a schema that has no name (schemas/named.ts)');
  return name;
}
