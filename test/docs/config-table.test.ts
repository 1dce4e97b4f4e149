/**
 * The configuration table has one home, docs/http-api.md's "Configuration" section, and it is checked against the
 * code that reads the variables (functions/config.ts), so it cannot drift:
 *  - it lists every variable readConfig reads, and nothing else;
 *  - each row's default, set as that variable, is accepted by readConfig without a warning and gives DEFAULTS' value
 *    (8 MiB → 8388608, `*`, `on`, 1 (off) → 1);
 *  - wrangler.toml [vars] declares the same variables with those defaults;
 *  - no other doc (README.md, docs/*.md) has a table of the variables: the others link to this one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { type Config, DEFAULTS, readConfig } from '../../functions/config.ts';
import { ROOT, docFiles, readDoc } from './doc-commands.ts';

const HOME = 'docs/http-api.md';
const source = readFileSync(join(ROOT, 'functions/config.ts'), 'utf8');
/** The variables readConfig reads: every `env.FEDGE_…` in functions/config.ts. */
const READ = [...new Set([...source.matchAll(/\benv\.(FEDGE_[A-Z0-9_]+)/g)].map((m) => m[1]!))].sort();

/** The rows of the first table under `## Configuration` in the doc: variable → default cell, as written. */
function configurationTable(markdown: string): Map<string, string> {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^##\s+Configuration\s*$/.test(l));
  if (start < 0) throw new Error('no "## Configuration" section');
  const end = lines.findIndex((l, i) => i > start && /^##\s/.test(l));
  const section = lines.slice(start + 1, end < 0 ? undefined : end);
  const first = section.findIndex((l) => l.startsWith('|'));
  const rows = new Map<string, string>();
  if (first < 0) return rows;
  const after = section.findIndex((l, i) => i > first && !l.startsWith('|'));
  const table = section.slice(first, after < 0 ? undefined : after);
  const header = table[0]!
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim().toLowerCase());
  const nameAt = header.indexOf('variable'),
    defaultAt = header.indexOf('default');
  if (nameAt < 0 || defaultAt < 0)
    throw new Error(`the table's header must name "variable" and "default": ${table[0]}`);
  for (const row of table.slice(2)) {
    const cells = row
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const name = /^`([A-Z0-9_]+)`$/.exec(cells[nameAt] ?? '')?.[1];
    if (!name) throw new Error(`not a variable in backticks: ${row}`);
    if (rows.has(name)) throw new Error(`${name} is listed twice`);
    rows.set(name, cells[defaultAt] ?? '');
  }
  return rows;
}

/** A default cell as the value one would set: `*` → *, 8 MiB → 8388608, 4,194,304 → 4194304, 1 (off) → 1. */
function settingFor(cell: string): string {
  const text = cell
    .replace(/\s*\([^)]*\)\s*$/, '')
    .replace(/\*\*/g, '')
    .trim();
  const code = /^`([^`]*)`$/.exec(text);
  if (code) return code[1]!;
  const n = /^(\d[\d,]*(?:\.\d+)?)\s*(KiB|MiB|GiB)?$/.exec(text);
  if (!n) throw new Error(`a default is a number (with KiB/MiB/GiB) or a value in backticks: ${cell}`);
  const unit = { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[n[2] ?? ''] ?? 1;
  return String(Number(n[1]!.replace(/,/g, '')) * unit);
}

/** The Config field a variable sets: the one field that changes when it is set to something other than its default. */
function fieldOf(name: string): keyof Config {
  const base = readConfig({});
  for (const probe of ['7', 'off', 'https://a.example']) {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const set = readConfig({ [name]: probe });
    warn.mockRestore();
    const changed = (Object.keys(base) as (keyof Config)[]).filter(
      (k) => JSON.stringify(set[k]) !== JSON.stringify(base[k]),
    );
    if (changed.length === 1) return changed[0]!;
  }
  throw new Error(`${name}: setting it changes no single field of readConfig's result`);
}

describe(`the configuration table (${HOME}, Configuration)`, () => {
  const table = configurationTable(readDoc(HOME));

  it('lists every variable functions/config.ts reads, and nothing else', () => {
    expect(READ.length).toBeGreaterThan(5);
    expect([...table.keys()].sort()).toEqual(READ);
  });

  it('states each default as functions/config.ts has it (DEFAULTS, through readConfig)', () => {
    const problems: string[] = [];
    for (const [name, cell] of table) {
      if (!READ.includes(name)) continue;
      const field = fieldOf(name);
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const value = readConfig({ [name]: settingFor(cell) })[field];
      const warned = warn.mock.calls.length > 0;
      warn.mockRestore();
      if (warned || JSON.stringify(value) !== JSON.stringify(DEFAULTS[field])) {
        problems.push(
          `${name}: the table says ${cell}; functions/config.ts's default (${field}) is ${JSON.stringify(DEFAULTS[field])}${warned ? ' (readConfig refuses the stated value)' : ''}`,
        );
      }
    }
    expect(problems).toEqual([]);
  });

  it('wrangler.toml [vars] declares the same variables, each at its default', () => {
    const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
    const vars = /^\[vars\]\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(toml)?.[1] ?? '';
    const declared = new Map([...vars.matchAll(/^(FEDGE_[A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)].map((m) => [m[1]!, m[2]!]));
    expect([...declared.keys()].sort()).toEqual(READ);
    for (const [name, value] of declared) {
      const field = fieldOf(name);
      expect(readConfig({ [name]: value })[field], `wrangler.toml ${name} = "${value}"`).toEqual(DEFAULTS[field]);
    }
  });

  it('is the only table of the variables in README.md and docs/*.md', () => {
    const others = docFiles()
      .filter((d) => d !== HOME)
      .flatMap((d) =>
        readDoc(d)
          .split('\n')
          .map((l, i) => ({ d, i, l })),
      )
      .filter(({ l }) => /^\|\s*`FEDGE_[A-Z0-9_]+`\s*\|/.test(l))
      .map(({ d, i }) => `${d}:${i + 1}`);
    expect(others, `link to ${HOME}#configuration instead`).toEqual([]);
  });

  it('reads defaults as written', () => {
    expect(settingFor('8 MiB')).toBe('8388608');
    expect(settingFor('4,194,304')).toBe('4194304');
    expect(settingFor('1 (off)')).toBe('1');
    expect(settingFor('`*`')).toBe('*');
    expect(() => settingFor('lots')).toThrow();
  });
});
