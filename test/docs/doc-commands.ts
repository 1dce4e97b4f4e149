/**
 * The shell commands the docs give, as test/docs/commands.test.ts and test/docs/record-timing.ts read them:
 *  - every command line of a fenced block whose language is sh, bash, shell, zsh or console (`$ ` lines), with `\`
 *    continuations joined, its trailing `# comment`, and the `#` lines after it (what it prints);
 *  - every inline code span outside fenced blocks that starts like a command (`npm run …`, `npm start`, `npx …`,
 *    `node <file>`, optionally after VAR=value assignments);
 *  - the timings the docs state for a command: a `N min` / `N s` in its trailing comment, in the `time` column of a
 *    table row that names it, or in a parenthesis right after an inline span (`npm run bench:load` (~3.5 min)).
 * A block is left out of CI by an HTML comment on the line before its fence: `<!-- ci: skip, the reason -->`.
 * Docs are README.md and every docs/*.md, found when the test runs, so a new docs file is checked as it lands.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../..');

export interface DocCommand {
  /** README.md, docs/sdk.md, … */
  doc: string;
  /** 1-based line of the command's first line */
  line: number;
  /** The command with continuations joined and its trailing comment removed, whitespace as written. */
  command: string;
  /** The trailing comment, without `#`. */
  comment: string;
  /** The `#` lines right after the command (what it prints, as the docs show it), without `# `. */
  output: string[];
  /** 'block': in a fenced shell block; 'inline': a code span in the text. */
  where: 'block' | 'inline';
  /** Why CI does not run it (`<!-- ci: skip, reason -->` before its block). */
  skip?: string | undefined;
}

export interface StatedTiming {
  doc: string;
  line: number;
  command: string;
  seconds: number;
  /** As the docs write it: `7.8 min`, `~8 min`. */
  text: string;
}

const SHELL = new Set(['sh', 'bash', 'shell', 'zsh', 'console']);
const SKIP = /^<!--\s*ci:\s*skip\s*(?:,\s*(.*?))?\s*-->$/;
/** A code span that is a command: npm/npx/node/wrangler/curl, optionally after VAR=value assignments. */
const INLINE_COMMAND =
  /^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:npm (?:run|start|test|install|ci)\b|npx \S|node \S+\.(?:ts|js|mjs)\b)/;
const TIME = /(?:^|[\s(])([~≈]\s?)?(\d+(?:\.\d+)?)\s?(min|s)\b/;

/** README.md and docs/*.md, in that order (relative to the repository's root). */
export function docFiles(root = ROOT): string[] {
  const docs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .sort()
        .map((f) => `docs/${f}`)
    : [];
  return ['README.md', ...docs];
}

/** `# comment` at the end of a shell line: the first `#` after whitespace that no quote encloses. */
export function splitComment(line: string): { code: string; comment: string } {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '\\') i++;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!)))
      return { code: line.slice(0, i).trimEnd(), comment: line.slice(i + 1).trim() };
  }
  return { code: line.trimEnd(), comment: '' };
}

/** The same command however it was spaced: one space between words, no trailing comment. */
export function normalizeCommand(command: string): string {
  return command.replace(/\\\n/g, ' ').replace(/\s+/g, ' ').trim();
}

/** `7.8 min`, `~8 min`, `359 s` → seconds (the last time in the text: `30 s stages — 42.5 min`); undefined when it states none. */
export function parseTime(text: string): { seconds: number; text: string } | undefined {
  const m = [...text.matchAll(new RegExp(TIME.source, 'g'))].at(-1);
  if (!m) return undefined;
  const value = Number(m[2]);
  return { seconds: m[3] === 'min' ? value * 60 : value, text: `${m[1] ?? ''}${m[2]} ${m[3]}` };
}

/** Every shell command of one markdown text. */
export function extractCommands(doc: string, text: string): DocCommand[] {
  const lines = text.split('\n');
  const out: DocCommand[] = [];
  let fence: { marker: string; shell: boolean; console: boolean; skip?: string | undefined } | undefined;
  let current: DocCommand | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const opening = /^ {0,3}(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (!fence && opening) {
      const lang = opening[2]!.toLowerCase();
      let before = i - 1;
      while (before >= 0 && lines[before]!.trim() === '') before--;
      const marker = before >= 0 ? SKIP.exec(lines[before]!.trim()) : null;
      fence = {
        marker: opening[1]!,
        shell: SHELL.has(lang),
        console: lang === 'console',
        skip: marker ? (marker[1] ?? '') : undefined,
      };
      current = undefined;
      continue;
    }
    if (fence) {
      if (line.trim().startsWith(fence.marker) && line.trim().replace(/[`~]/g, '') === '') {
        fence = undefined;
        current = undefined;
        continue;
      }
      if (!fence.shell) continue;
      let body = line;
      if (fence.console) {
        if (!/^\s*\$ /.test(line)) {
          if (current && line.trim()) current.output.push(line);
          continue;
        }
        body = line.replace(/^\s*\$ /, '');
      }
      if (/^\s*#/.test(body)) {
        if (current) current.output.push(body.replace(/^\s*# ?/, ''));
        continue;
      }
      if (body.trim() === '') {
        current = undefined;
        continue;
      }
      const first = i;
      let joined = body;
      while (/\\\s*$/.test(splitComment(joined).code) && i + 1 < lines.length)
        joined = `${splitComment(joined).code.replace(/\\\s*$/, '')}\n${lines[++i]!}`;
      // A comment may follow each continued line; the last line's is the command's.
      const parts = joined.split('\n').map(splitComment);
      current = {
        doc,
        line: first + 1,
        command: parts
          .map((p) => p.code.trim())
          .join(' ')
          .replace(/\s+/g, ' ')
          .trim(),
        comment: parts
          .map((p) => p.comment)
          .filter(Boolean)
          .join(' '),
        output: [],
        where: 'block',
        skip: fence.skip,
      };
      out.push(current);
      continue;
    }
    for (const m of line.matchAll(/`([^`\n]+)`/g)) {
      const span = m[1]!.trim();
      if (INLINE_COMMAND.test(span))
        out.push({
          doc,
          line: i + 1,
          command: span,
          comment: line.slice(m.index! + m[0].length),
          output: [],
          where: 'inline',
        });
    }
  }
  return out;
}

/**
 * The timings a text states for commands: a fenced command's trailing comment (`# … 7.8 min`), the `time` column
 * of a table row whose first cell names a command (`| \`npm run simulate\` (…) | … | **6.0 min** |`), and an inline
 * span followed by `(~N min` or `(N s`.
 */
export function statedTimings(doc: string, text: string): StatedTiming[] {
  const out: StatedTiming[] = [];
  for (const c of extractCommands(doc, text)) {
    const source =
      c.where === 'block' ? c.comment : (/^\s*\(([~≈]?\s?\d+(?:\.\d+)?\s?(?:min|s)\b)/.exec(c.comment)?.[1] ?? '');
    const t = parseTime(source);
    if (t) out.push({ doc, line: c.line, command: normalizeCommand(c.command), ...t });
  }
  const lines = text.split('\n');
  let timeColumn = -1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('|')) {
      timeColumn = -1;
      continue;
    }
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    if (timeColumn === -1 && lines[i + 1]?.startsWith('|---')) {
      timeColumn = cells.findIndex((c) => /^time$/i.test(c));
      continue;
    }
    if (timeColumn < 0 || /^---/.test(cells[0] ?? '')) continue;
    const command = /`([^`]+)`/.exec(cells[0] ?? '')?.[1];
    const t = parseTime((cells[timeColumn] ?? '').replace(/\*/g, ''));
    if (command && INLINE_COMMAND.test(command) && t)
      out.push({ doc, line: i + 1, command: normalizeCommand(command), ...t });
  }
  return out;
}

export function readDoc(doc: string, root = ROOT): string {
  return readFileSync(join(root, doc), 'utf8');
}

/** Figures recorded by test/docs/record-timing.ts (or, marked so, copied from the docs before it existed). */
export interface TimingRecord {
  command: string;
  seconds: number;
  recorded: string;
  /** 'test/docs/record-timing.ts' for a run it timed; otherwise where the figure came from. */
  by: string;
  host?: string | undefined;
  exitCode?: number | undefined;
}

export const TIMINGS = join(ROOT, 'test/docs/timings.json');

export function readTimings(): TimingRecord[] {
  return existsSync(TIMINGS) ? (JSON.parse(readFileSync(TIMINGS, 'utf8')) as { records: TimingRecord[] }).records : [];
}

/** Whether a stated time agrees with a recorded one: within 15 % of the recorded figure, or 10 s for short runs. */
export function agrees(statedSeconds: number, recordedSeconds: number): boolean {
  return Math.abs(statedSeconds - recordedSeconds) <= Math.max(0.15 * recordedSeconds, 10);
}
