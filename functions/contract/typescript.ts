/**
 * TypeScript types from the contract's zod schemas, for the SDK (client-sdk/edge/contract.ts), which must not import
 * zod or server code: each schema goes through z.toJSONSchema (input mode for request bodies, output mode for answers)
 * and its JSON Schema is written as a type. A nested schema the SDK already has a type for (the Worker's own, in
 * federated/) is written as that type's name. Covers what the contract's schemas use: objects, records, arrays,
 * unions, intersections, enums, constants and the JSON primitives; anything else is an error, not `unknown`.
 */
import { z } from 'zod';

type Json = Record<string, unknown>;

const MARK = 'x-typescript';

export interface TypeSource {
  /** The type's name in the SDK. */
  name: string;
  schema: z.ZodType;
  io: 'input' | 'output';
}

/** `export interface Name { … }` (or a type alias) for each source; `known` maps nested schemas to existing types. */
export function typeDeclarations(sources: TypeSource[], known: Map<z.ZodType, string>): string {
  return sources
    .map(({ name, schema, io }) => {
      const json = z.toJSONSchema(schema, {
        target: 'draft-2020-12',
        io,
        unrepresentable: 'throw',
        override: (ctx) => {
          const zod = ctx.zodSchema as unknown as z.ZodType;
          const type = zod === schema ? undefined : known.get(zod);
          if (type) ctx.jsonSchema[MARK] = type;
        },
      }) as Json;
      const doc = typeof json.description === 'string' ? `${comment(json.description, '')}\n` : '';
      const body = typeOf(json, '');
      return json.type === 'object' && body.startsWith('{')
        ? `${doc}export interface ${name} ${body}`
        : `${doc}export type ${name} = ${body};`;
    })
    .join('\n\n');
}

/** A property's description and default, as its doc comment says them. */
function describe(p: Json): string | undefined {
  const given = p.default === undefined ? undefined : `default ${JSON.stringify(p.default)}`;
  if (typeof p.description !== 'string') return given && `${given[0]!.toUpperCase()}${given.slice(1)}.`;
  return given ? `${p.description} (${given})` : p.description;
}

const comment = (text: string, indent: string) => `${indent}/** ${text.replace(/\*\//g, '*\\/')} */`;
const key = (name: string) => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name));

function typeOf(s: Json, indent: string): string {
  if (typeof s[MARK] === 'string') return s[MARK];
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const union = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (union) return union.map((u) => group(typeOf(u, indent))).join(' | ');
  if (Array.isArray(s.allOf)) return (s.allOf as Json[]).map((u) => group(typeOf(u, indent))).join(' & ');
  switch (s.type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array':
      return `${group(typeOf(s.items as Json, indent))}[]`;
    case 'object':
      return objectType(s, indent);
    case undefined:
      if (Object.keys(s).every((k) => k === 'description' || k === 'default')) return 'unknown';
  }
  throw new Error(`typescript: no type for JSON Schema ${JSON.stringify(s).slice(0, 200)}`);
}

function objectType(s: Json, indent: string): string {
  const properties = s.properties as Record<string, Json> | undefined;
  if (!properties) {
    const values = s.additionalProperties;
    return `Record<string, ${values && typeof values === 'object' ? typeOf(values as Json, indent) : 'unknown'}>`;
  }
  const required = new Set((s.required as string[] | undefined) ?? []);
  const inner = `${indent}  `;
  const lines = Object.entries(properties).flatMap(([name, p]) => [
    ...(describe(p) ? [comment(describe(p)!, inner)] : []),
    `${inner}${key(name)}${required.has(name) ? '' : '?'}: ${typeOf(p, inner)};`,
  ]);
  return `{\n${lines.join('\n')}\n${indent}}`;
}

/** Parentheses around a union or intersection inside another type. */
const group = (type: string) => (/^[^{]*[|&]/.test(type) ? `(${type})` : type);
