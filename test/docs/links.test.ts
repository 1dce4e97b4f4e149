/**
 * Every link in README.md and docs/*.md goes to a file in the repository that exists, and an anchor to a heading
 * of the file it names:
 *  - markdown links and images (`[text](target)`, `![alt](target)`) outside code (fenced blocks and code spans);
 *  - only relative targets: a link to another site, or out of the repository (`../../…`), fails — the docs link
 *    only what the repository holds;
 *  - the target is tracked by git or about to be (not ignored), a file or a folder with files in it;
 *  - `#anchor` in a markdown target (or alone, for the same file) is the GitHub slug of one of its headings.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, docFiles, readDoc } from './doc-commands.ts';

interface Link {
  line: number;
  target: string;
}

/** Lines outside fenced code blocks, with inline code spans blanked (so `[a](b)` in code is not a link). */
function prose(markdown: string): { line: number; raw: string; text: string }[] {
  const out: { line: number; raw: string; text: string }[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((line, i) => {
    const opening = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, '') === '') fence = undefined;
      return;
    }
    if (opening) {
      fence = opening[1]!;
      return;
    }
    out.push({ line: i + 1, raw: line, text: line.replace(/(`+)[^`]*?\1/g, (m) => ' '.repeat(m.length)) });
  });
  return out;
}

/** The links and images of a markdown text, outside code. */
function links(markdown: string): Link[] {
  const out: Link[] = [];
  for (const { line, text } of prose(markdown)) {
    for (const m of text.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      out.push({ line, target: m[1]! });
    const ref = /^ {0,3}\[[^\]]+\]:\s*(\S+)/.exec(text);
    if (ref) out.push({ line, target: ref[1]! });
  }
  return out;
}

/** GitHub's anchor for a heading's text: lower case, markup and punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a markdown text's headings (ATX, outside code), duplicates numbered as GitHub does (-1, -2, …). */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { raw } of prose(markdown)) {
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(raw);
    if (!h) continue;
    const base = slug(h[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Files git tracks or would add (untracked, not ignored), relative to the root, with `/`. */
function repositoryFiles(): Set<string> | undefined {
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) return undefined;
  return new Set(r.stdout.split('\0').filter(Boolean));
}

describe('links in README.md and docs/*.md', () => {
  const files = repositoryFiles();
  const inRepository = (path: string) => {
    if (!files) return existsSync(join(ROOT, path));
    if (files.has(path)) return existsSync(join(ROOT, path));
    const folder = path.replace(/\/?$/, '/');
    return [...files].some((f) => f.startsWith(folder) && existsSync(join(ROOT, f)));
  };

  it('finds links the way GitHub renders them', () => {
    const md = [
      '# Title',
      'See [a](docs/a.md#b-c), ![img](images/x.png) and `[not](code)`.',
      '```',
      '[no](link)',
      '```',
      '## B: c (`d`)',
      '## B: c (`d`)',
      '[r]: other.md',
    ].join('\n');
    expect(links(md).map((l) => l.target)).toEqual(['docs/a.md#b-c', 'images/x.png', 'other.md']);
    expect([...anchors(md)]).toEqual(['title', 'b-c-d', 'b-c-d-1']);
    expect(slug('Hardening: what one request, upload or device can do')).toBe(
      'hardening-what-one-request-upload-or-device-can-do',
    );
    expect(slug('Sharded rounds (`shardSize`)')).toBe('sharded-rounds-shardsize');
    expect(slug('Does the loop earn its place? `--scenario finetune`')).toBe(
      'does-the-loop-earn-its-place---scenario-finetune',
    );
  });

  it('every link goes to a file or folder in the repository, and every anchor to a heading there', () => {
    const problems: string[] = [];
    const docs = docFiles();
    expect(docs.length).toBeGreaterThan(1);
    for (const doc of docs) {
      for (const { line, target } of links(readDoc(doc))) {
        const at = `${doc}:${line} (${target})`;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) {
          problems.push(`${at}: links outside the repository; link a file in it`);
          continue;
        }
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const resolved = path
          ? normalize(join(dirname(doc), decodeURIComponent(path)))
              .split(sep)
              .join('/')
          : doc;
        if (resolved.startsWith('..') || relative(ROOT, join(ROOT, resolved)).startsWith('..')) {
          problems.push(`${at}: leaves the repository`);
          continue;
        }
        if (!inRepository(resolved.replace(/\/$/, ''))) {
          problems.push(`${at}: no such file in the repository (${resolved})`);
          continue;
        }
        if (anchor !== undefined) {
          if (!resolved.endsWith('.md')) problems.push(`${at}: an anchor into a file that is not markdown`);
          else if (!anchors(readDoc(resolved)).has(decodeURIComponent(anchor)))
            problems.push(`${at}: ${resolved} has no heading with the anchor #${anchor}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
