/** How test/docs/doc-commands.ts reads commands, their printed output, skip marks and stated times out of markdown. */
import { describe, expect, it } from 'vitest';
import { agrees, extractCommands, parseTime, splitComment, statedTimings } from './doc-commands.ts';

const md = [
  'Intro with `npm run bench:load` (~3.5 min) and `BENCH_N=10 npm run bench:secagg`, and `not a command`.',
  '',
  '```sh',
  'npm start   # the server',
  "curl -s 127.0.0.1:8787/x -H 'A: #not-a-comment' \\",
  "  -d '{}'                  # posts — 2 s",
  '# {"ok":true,',
  '#  "n":1}',
  '```',
  '',
  '<!-- ci: skip, needs an account -->',
  '',
  '```bash',
  'npx wrangler login',
  '```',
  '',
  '```console',
  '$ npm test',
  'output line',
  '```',
  '',
  '```ts',
  'npm run not-shell',
  '```',
  '',
  '| run | accuracy | time |',
  '|---|---|---|',
  '| `npm run simulate -- --dp` (σ 2.5) | 97 % | **7.7 min** |',
  '| no command here | 1 % | 3 min |',
].join('\n');

describe('doc-commands', () => {
  it('finds fenced shell commands (continuations joined, comments split off, # lines as output), console $ lines and inline command spans', () => {
    const cmds = extractCommands('X.md', md);
    const block = cmds.filter((c) => c.where === 'block');
    expect(block.map((c) => c.command)).toEqual([
      'npm start',
      "curl -s 127.0.0.1:8787/x -H 'A: #not-a-comment' -d '{}'",
      'npx wrangler login',
      'npm test',
    ]);
    expect(block[1]).toMatchObject({ line: 5, comment: 'posts — 2 s', output: ['{"ok":true,', ' "n":1}'] });
    expect(block[2]!.skip).toBe('needs an account');
    expect(block[3]!.output).toEqual(['output line']);
    expect(cmds.filter((c) => c.where === 'inline').map((c) => c.command)).toEqual([
      'npm run bench:load',
      'BENCH_N=10 npm run bench:secagg',
      'npm run simulate -- --dp',
    ]);
  });

  it("reads the times stated for commands: a comment, a (~N min) after a span, a table's time column", () => {
    expect(statedTimings('X.md', md).map((t) => [t.command, t.seconds, t.text])).toEqual([
      ['npm run bench:load', 210, '~3.5 min'],
      ["curl -s 127.0.0.1:8787/x -H 'A: #not-a-comment' -d '{}'", 2, '2 s'],
      ['npm run simulate -- --dp', 462, '7.7 min'],
    ]);
    expect(parseTime('30 s stages — 42.5 min')?.seconds).toBe(2550);
    expect(parseTime('ε ≤ 3, no DP')).toBeUndefined();
  });

  it('splits a trailing comment only outside quotes; stated and recorded times agree within 15 % (10 s for short runs)', () => {
    expect(splitComment('echo \'#x\' "#y" # z')).toEqual({ code: 'echo \'#x\' "#y"', comment: 'z' });
    expect(splitComment('a#b')).toEqual({ code: 'a#b', comment: '' });
    expect([agrees(468, 468), agrees(480, 540), agrees(468, 1920), agrees(25, 33)]).toEqual([true, true, false, true]);
  });
});
