/**
 * docs/http-api.md "Creating a task" lists the create-task body's fields as the schema the route validates declares
 * them (functions/contract/schemas/task-bodies.ts): every field once, in the schema's order, its default in brackets,
 * its range, and its description — one table written from the schema, so the doc cannot say another thing. When the
 * schema changes, the failure prints the table to paste.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { taskBody } from '../../functions/contract/schemas/task-bodies.ts';
import { readDoc } from './doc-commands.ts';

type Json = Record<string, unknown>;

/** A default as the doc writes it: a bare string in code, objects JavaScript-style. */
const value = (v: unknown): string =>
  typeof v === 'string'
    ? `\`${v}\``
    : typeof v === 'object'
      ? `\`${JSON.stringify(v)
          .replace(/"(\w+)":/g, '$1: ')
          .replace(/,(?=\S)/g, ', ')}\``
      : String(v);

const number = (n: unknown) => (n as number).toLocaleString('en-US');

/** The rows of the table, from the schema. */
function rows(): string[] {
  const schema = z.toJSONSchema(taskBody, { io: 'input', unrepresentable: 'any' }) as Json;
  return Object.entries(schema.properties as Record<string, Json>).map(([field, p]) => {
    const range =
      p.minimum !== undefined && p.maximum !== undefined && (p.maximum as number) < Number.MAX_SAFE_INTEGER
        ? `${number(p.minimum)}…${number(p.maximum)}`
        : typeof p.minLength === 'number' && p.minLength > 1
          ? `≥ ${p.minLength} characters`
          : undefined;
    const meaning = [range, p.description].filter(Boolean).join(': ');
    return `| \`${field}\`${p.default === undefined ? '' : ` [${value(p.default)}]`} | ${meaning} |`;
  });
}

/** The first table after the "### Creating a task" heading. */
function documented(markdown: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^###\s+Creating a task\s*$/.test(l));
  if (start < 0) throw new Error('no "### Creating a task" section');
  const first = lines.findIndex((l, i) => i > start && l.startsWith('|'));
  const end = lines.findIndex((l, i) => i > first && !l.startsWith('|'));
  return lines.slice(first + 2, end < 0 ? undefined : end);
}

describe('docs/http-api.md "Creating a task"', () => {
  it("is the create-task body's schema: fields, defaults, ranges and meanings", () => {
    const want = rows();
    expect(documented(readDoc('docs/http-api.md')), `the table, from the schema:\n${want.join('\n')}`).toEqual(want);
  });
});
