/**
 * Records how long a documented command takes, for the times the docs state (test/docs/commands.test.ts compares
 * each stated time with the last figure recorded here, within 15 %):
 *
 *   node test/docs/record-timing.ts '<command exactly as the docs give it>'   runs it from the clone's root, times
 *                                        the whole command (wall clock), and appends the figure to test/docs/timings.json
 *   node test/docs/record-timing.ts --list     every time the docs state, and the figure recorded for it
 *
 * Only commands the docs give are recorded (the docs' text, continuations joined). A command that fails records
 * nothing. Commit timings.json together with the docs' new figure.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import {
  ROOT,
  TIMINGS,
  type TimingRecord,
  agrees,
  docFiles,
  extractCommands,
  normalizeCommand,
  readDoc,
  readTimings,
  statedTimings,
} from './doc-commands.ts';

const USAGE = `usage: node test/docs/record-timing.ts '<documented command>'   (time it, record the figure)
       node test/docs/record-timing.ts --list                     (stated times and recorded figures)`;

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(args.length === 0 ? 2 : 0);
}
const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;

if (args[0] === '--list') {
  const records = readTimings();
  for (const d of docFiles()) {
    for (const t of statedTimings(d, readDoc(d))) {
      const last = records.filter((r) => normalizeCommand(r.command) === t.command).at(-1);
      const verdict = !last ? 'NOT RECORDED' : agrees(t.seconds, last.seconds) ? 'agrees' : 'DISAGREES';
      console.log(
        `${d}:${t.line}  ${t.text.padEnd(9)} ${verdict.padEnd(12)} ${last ? `${minutes(last.seconds)} (${last.recorded}, ${last.by})` : ''}\n    ${t.command}`,
      );
    }
  }
  process.exit(0);
}

const command = normalizeCommand(args.join(' '));
const documented = new Set(
  docFiles().flatMap((d) => extractCommands(d, readDoc(d)).map((c) => normalizeCommand(c.command))),
);
if (!documented.has(command)) {
  console.error(
    `record-timing: \`${command}\` is not a command in README.md or docs/*.md; give it as the docs write it`,
  );
  process.exit(2);
}

console.log(`record-timing: running \`${command}\` from ${ROOT}`);
const load = loadavg()[0]!;
const started = performance.now();
const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
});
const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1))));
const seconds = (performance.now() - started) / 1000;
if (code !== 0) {
  console.error(`record-timing: the command exited ${code} after ${minutes(seconds)}; nothing recorded`);
  process.exit(code);
}
const record: TimingRecord = {
  command,
  seconds: Math.round(seconds * 10) / 10,
  recorded: new Date().toISOString().slice(0, 10),
  by: 'test/docs/record-timing.ts',
  host: `${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), load ${load.toFixed(1)} at start, Node ${process.version}`,
};
const file = JSON.parse(readFileSync(TIMINGS, 'utf8')) as { records: TimingRecord[] };
file.records.push(record);
writeFileSync(TIMINGS, `${JSON.stringify(file, null, 2)}\n`);
console.log(`record-timing: ${minutes(seconds)} (${seconds.toFixed(1)} s) recorded in test/docs/timings.json`);
