/**
 * Every shell command in README.md and docs/*.md (test/docs/doc-commands.ts finds them: fenced sh blocks, and inline
 * command spans) is checked here, so a command the docs promise cannot quietly stop working:
 *  - cheap commands run as written (curl against the server this test starts with dev/harness/local-server.ts —
 *    `npm start`'s server — with only 127.0.0.1:8787 / localhost:8787 replaced by its URL), and what they print is
 *    compared with the `#` lines the docs show under them (`…` stands for anything);
 *  - long commands are checked, not run: simulations with `--check` (options parsed and validated, the run they
 *    describe printed — and a recipe their comment names must be the one the run prints), benchmarks' options and
 *    environment as bench/cli.ts checks them;
 *  - `npm start -- --var K:V`: this test's server runs with those variables, and they must take effect;
 *  - commands CI runs elsewhere (`npm test`, `npm run deploy` as `wrangler deploy --dry-run`, `npm pack` and
 *    `npm install` of the packed package, an example's build) are checked to be that, and wrangler's account
 *    commands (login, r2 bucket create, secret put) to exist as written in the pinned wrangler;
 *  - `npm run X` names a script (an example's own, in a `cd examples/<app> && …` or a doc about it), `node <file>`
 *    a file — inline spans too;
 *  - a time the docs state for a command (its comment, a table's `time` column, `(~N min)` after a span) agrees with
 *    the figure test/docs/record-timing.ts recorded in test/docs/timings.json — the test never times a long run.
 * A fenced command that no rule below checks fails the test: add a rule, or put `<!-- ci: skip, the reason -->` on
 * the line before its block.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';
import { checkBench } from '../../bench/cli.ts';
import { USAGE, describeRun, parseSimulateArgs } from '../../simulate/options.ts';
import { checkSimulation } from '../../simulate/simulation.ts';
import {
  type DocCommand,
  ROOT,
  agrees,
  docFiles,
  extractCommands,
  normalizeCommand,
  readDoc,
  readTimings,
  statedTimings,
} from './doc-commands.ts';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string>;
  peerDependencies?: Record<string, string>;
};
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const DOCS = docFiles();
const ALL = DOCS.flatMap((d) => extractCommands(d, readDoc(d)));
const BLOCK = ALL.filter((c) => c.where === 'block');
const at = (c: DocCommand) => `${c.doc}:${c.line} \`${c.command}\``;
/** The command without leading VAR=value assignments. */
const bare = (command: string) => command.replace(/^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+/, '');

/** What a check needs: run it as written, run it with --check / --help, or show that CI runs it elsewhere. */
type Check =
  | { kind: 'run'; server: boolean }
  | { kind: 'server-vars'; vars: Record<string, string> }
  /** A benchmark: its options and environment checked as bench/cli.ts checks them (benchProblems), never run here. */
  | { kind: 'bench' }
  | { kind: 'options'; run: string }
  | { kind: 'wrangler'; args: string[] }
  | { kind: 'elsewhere'; by: string; verify: () => void };

/** The rules, first match wins. A fenced command none of them matches fails the test. */
function checkFor(command: string): Check | undefined {
  const c = bare(command);
  if (c === 'npm start') {
    return {
      kind: 'elsewhere',
      by: "this test's own server: startLocalServer runs dev/start.ts, which is npm start",
      verify: () => {
        expect(pkg.scripts.start).toBe('node dev/start.ts');
        expect(read('dev/harness/local-server.ts')).toContain("'dev/start.ts'");
      },
    };
  }
  // `npm start -- --var K:V …`: this test's server (npm start's) runs with those variables, and they must take effect.
  const startArgs = /^npm start -- (.+)$/.exec(c)?.[1]?.split(/\s+/);
  if (
    startArgs &&
    startArgs.length % 2 === 0 &&
    startArgs.every((a, i) => (i % 2 === 0 ? a === '--var' : /^[A-Z_][A-Z0-9_]*:\S+$/.test(a)))
  ) {
    return {
      kind: 'server-vars',
      vars: Object.fromEntries(
        startArgs
          .filter((_, i) => i % 2 === 1)
          .map((kv) => [kv.slice(0, kv.indexOf(':')), kv.slice(kv.indexOf(':') + 1)]),
      ),
    };
  }
  if (c === 'npm pack') {
    return {
      kind: 'elsewhere',
      by: 'test/package/consumer.test.ts (test/package/install.ts packs the package with npm pack)',
      verify: () => expect(read('test/package/install.ts')).toContain("['pack',"),
    };
  }
  // `cd examples/<app> && npm install && npm run build`: the consumer test builds each example against the packed package.
  const example = /^cd (examples\/[\w.-]+) && npm install && npm run build$/.exec(c)?.[1];
  if (example) {
    return {
      kind: 'elsewhere',
      by: `test/package/consumer.test.ts (builds ${example} with Vite against the packed package, then runs it in Chromium)`,
      verify: () => {
        const app = JSON.parse(read(`${example}/package.json`)) as {
          scripts: Record<string, string>;
          dependencies: Record<string, string>;
        };
        expect(app.scripts.build).toBe('vite build');
        expect(app.dependencies[pkg.name]).toBe(`file:../../${pkg.name}-${pkg.version}.tgz`);
        const consumer = read('test/package/consumer.test.ts');
        expect(consumer).toContain(`'${example}'`);
        expect(consumer).toMatch(/vite\.js'\), 'build'\]/);
      },
    };
  }
  if (c === 'npm test') {
    return {
      kind: 'elsewhere',
      by: 'CI: .ci/run runs npm test',
      verify: () => expect(read('.ci/run')).toMatch(/^npm test$/m),
    };
  }
  if (c === 'npm run deploy') {
    return {
      kind: 'elsewhere',
      by: 'test/e2e/deploy-dry-run.test.ts (wrangler deploy --dry-run: an upload needs an account)',
      verify: () => {
        expect(pkg.scripts.deploy).toMatch(/^wrangler deploy\b/);
        expect(read('test/e2e/deploy-dry-run.test.ts')).toContain("'deploy', '--dry-run'");
      },
    };
  }
  const install = /^npm install (\S+)$/.exec(c);
  if (install) {
    const name = install[1]!;
    // A path to the packed package (npm install ../fedge/fedge-0.1.0.tgz): the file npm pack writes.
    const tarball = name.endsWith('.tgz');
    return {
      kind: 'elsewhere',
      by: 'test/package/consumer.test.ts (installs the packed package, and the optional packages, into apps offline)',
      verify: () => {
        const consumer = read('test/package/consumer.test.ts');
        if (tarball)
          expect(name.split('/').at(-1), `${c}: npm pack writes ${pkg.name}-<version>.tgz`).toBe(
            `${pkg.name}-${pkg.version}.tgz`,
          );
        if (name === pkg.name || tarball) expect(consumer).toMatch(/installApp\(\w+, tarball/);
        else {
          expect(pkg.peerDependencies?.[name], `${name} is not a peer dependency of ${pkg.name}`).toBeDefined();
          expect(consumer).toContain(`'${name}'`);
        }
      },
    };
  }
  if (/^npm run bench:[\w:.-]+(?: -- .*)?$/.test(c)) return { kind: 'bench' };
  if (/^npm run (?:simulate|fedge) -- (?:.* )?--help$/.test(c)) return { kind: 'run', server: false };
  if (/^npm run simulate(?: -- .*)?$/.test(c))
    return { kind: 'options', run: `${c}${c.includes(' -- ') ? '' : ' --'} --check` };
  if (/^npm run fedge -- /.test(c) || /^node cli\/fedge\.ts /.test(c)) return { kind: 'run', server: false };
  const wrangler = /^npx wrangler (.+)$/.exec(c);
  if (wrangler) return { kind: 'wrangler', args: wrangler[1]!.split(/\s+/) };
  if (/^(?:node -e |curl )/.test(c)) return { kind: 'run', server: /\b(?:127\.0\.0\.1|localhost):8787\b/.test(c) };
  return undefined;
}

/** Runs a shell command line in `cwd` (bash, pipefail), with the project's Node and binaries first on PATH. */
function shell(
  command: string,
  cwd: string,
  timeout = 60_000,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const PATH = `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}`;
  const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
    cwd,
    timeout,
    env: { ...process.env, PATH, NO_COLOR: '1', WRANGLER_SEND_METRICS: 'false' },
  });
  let stdout = '',
    stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * What `npm run simulate -- <args> --check` prints and exits with, computed in this process by the code simulate.ts
 * runs for --check (parseSimulateArgs, checkSimulation, describeRun).
 */
function checkInProcess(command: string): { status: number; stdout: string; stderr: string } {
  expect(pkg.scripts.simulate).toBe('node simulate/simulate.ts');
  const args = command
    .replace(/^npm run simulate(?: --)?\s*/, '')
    .split(/\s+/)
    .filter(Boolean);
  try {
    const o = parseSimulateArgs(args);
    if (!o?.check) return { status: 0, stdout: USAGE, stderr: '' };
    if (o.scenario !== 'scale') checkSimulation({ devicesPerRound: o.perRound, dropout: o.dropout });
    return {
      status: 0,
      stdout: `npm run simulate: the options are valid; this command would run\n${describeRun(o)}`,
      stderr: '',
    };
  } catch (e) {
    return { status: 2, stdout: '', stderr: (e as Error).message };
  }
}

/**
 * `[VAR=value …] npm run bench:X [-- args]`: the problems bench/cli.ts would report for it with --check (what the
 * bench script imports first, before anything loads), computed here without starting the bench's process.
 */
function benchProblems(command: string): string[] {
  const env = Object.fromEntries(
    [...command.matchAll(/(?:^|\s)([A-Z_][A-Z0-9_]*)=(\S*)(?=\s)/g)]
      .filter((m) => command.indexOf(m[0]) < command.indexOf('npm run'))
      .map((m) => [m[1]!, m[2]!]),
  );
  const [, script, rest] = /npm run ([\w:.-]+)(?: -- (.*))?$/.exec(command)!;
  const file = /(?:^|\s)node (bench\/[\w-]+\.ts)(?:\s|$)/.exec(pkg.scripts[script!] ?? '')?.[1];
  if (!file) return [`npm run ${script} does not run a bench/*.ts script`];
  if (
    !/^import '\.\/cli\.ts';/m.test(read(file)) ||
    read(file).search(/^import /m) !== read(file).search(/^import '\.\/cli\.ts';/m)
  )
    return [`${file} does not import './cli.ts' first`];
  return checkBench(file.slice('bench/'.length), [...(rest ? rest.split(/\s+/) : []), '--check'], env);
}

/** `run` on every item, at most `width` at once (the checks are process starts: they overlap well even on 2 cores). */
async function each<T>(items: T[], run: (item: T) => Promise<void>, width = 4): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await run(item);
    }),
  );
}

/** The docs' `#` lines under a command as a pattern: whitespace ignored, `…` anything, `← note` dropped, lines in order. */
function outputPattern(lines: string[]): RegExp | undefined {
  const parts = lines.map((l) => l.replace(/\s+←.*$/, '').replace(/\s+/g, '')).filter(Boolean);
  if (!parts.length) return undefined;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(parts.map((p) => p.split('…').map(esc).join('.*?')).join('.*?'), 's');
}

/** A recipe a command's comment names (`5 epochs of Adam, FedAvg`), to compare with the one the run prints. */
function recipeIn(text: string): { epochs?: number; optimizer?: string; server?: string } {
  const epochs = /\b(\d+|one) (?:local )?epochs?\b/i.exec(text)?.[1];
  const optimizer = /\bepochs? of (?:plain )?(SGD|Adam|momentum)\b/i.exec(text)?.[1]?.toLowerCase();
  const server = /\b(FedAvgM|FedAvg|FedAdam)\b/i.exec(text)?.[1]?.toLowerCase();
  return {
    ...(epochs && { epochs: epochs === 'one' ? 1 : Number(epochs) }),
    ...(optimizer && { optimizer }),
    ...(server && { server }),
  };
}

let server: LocalServer | undefined;
const state = mkdtempSync(join(tmpdir(), 'fedge-docs-'));
const work = mkdtempSync(join(tmpdir(), 'fedge-docs-cwd-'));

/** Variables the docs start the server with (`npm start -- --var K:V`): this test's server gets them too. */
const SERVER_VARS = Object.assign(
  {},
  ...BLOCK.filter((c) => !c.skip)
    .map((c) => checkFor(c.command))
    .filter((k) => k?.kind === 'server-vars')
    .map((k) => (k as Extract<Check, { kind: 'server-vars' }>).vars),
) as Record<string, string>;

beforeAll(async () => {
  if (BLOCK.some((c) => !c.skip && (checkFor(c.command) as { server?: boolean } | undefined)?.server))
    server = await startLocalServer({ persistTo: state, vars: SERVER_VARS });
});
afterAll(async () => {
  await server?.stop();
  rmSync(state, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('the commands in README.md and docs/*.md', () => {
  it("finds the docs' commands (README.md and every docs/*.md), and every fenced one has a check or a reason to skip it", () => {
    expect(DOCS).toContain('README.md');
    expect(BLOCK.length).toBeGreaterThan(20);
    const unchecked = BLOCK.filter((c) => !c.skip && !checkFor(c.command)).map(at);
    expect(
      unchecked,
      'commands with no check: add a rule to test/docs/commands.test.ts, or mark the block <!-- ci: skip, reason -->',
    ).toEqual([]);
    const noReason = BLOCK.filter((c) => c.skip !== undefined && c.skip.trim() === '').map(at);
    expect(noReason, '<!-- ci: skip --> needs a reason: <!-- ci: skip, why CI cannot run it -->').toEqual([]);
    for (const c of BLOCK.filter((c) => c.skip)) console.log(`not run in CI: ${at(c)} — ${c.skip}`);
  });

  it("cheap commands run as written (curl against this test's server, only the URL replaced) and print what the docs show", async () => {
    // In order, in one working directory: a later command may read what an earlier one wrote (digit.json).
    for (const c of BLOCK.filter((c) => !c.skip && checkFor(c.command)?.kind === 'run')) {
      const { server: needsServer } = checkFor(c.command) as { server: boolean };
      const command = needsServer
        ? c.command.replace(/(?:http:\/\/)?(?:127\.0\.0\.1|localhost):8787\b/g, server!.url)
        : c.command;
      // From the clone's root for npm and when the command names a file in it (models/…), else from an empty directory.
      const inRepo =
        /^npm /.test(bare(command)) ||
        command
          .split(/\s+/)
          .some((w) => /^@?[\w.-]+\/[\w./-]+$/.test(w) && existsSync(join(ROOT, w.replace(/^@/, ''))));
      const r = await shell(command, inRepo ? ROOT : work);
      expect(r.status, `${at(c)} exited ${r.status}: ${r.stderr}`).toBe(0);
      if (/^curl /.test(bare(c.command))) expect(r.stdout, at(c)).not.toMatch(/^\{"error"/);
      const pattern = outputPattern(c.output);
      if (pattern)
        expect(
          r.stdout.replace(/\s+/g, ''),
          `${at(c)} printed:\n${r.stdout}\nthe docs show:\n${c.output.join('\n')}`,
        ).toMatch(pattern);
    }
  });

  it('long commands accept their options (--check), and a recipe their comment names is the one the run prints', async () => {
    const long = BLOCK.filter((c) => !c.skip && checkFor(c.command)?.kind === 'options');
    await each(long, async (c) => {
      const check = checkFor(c.command) as Extract<Check, { kind: 'options' }>;
      // The first as written, through npm and simulate.ts (the wiring); the others through the same parser and checks
      // in this process, which is what --check runs — a process start each costs seconds on a busy 2-core CI.
      const r = c === long[0] || /['"\\$`]/.test(check.run) ? await shell(check.run, ROOT) : checkInProcess(check.run);
      expect(r.status, `${at(c)} with --check exited ${r.status}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('the options are valid');
      const stated = recipeIn(c.comment);
      const printed = /local training: (\d+) epochs?, batch \d+, lr [\d.e-]+ \((\w+)\); server: (\w+)/.exec(r.stdout);
      expect(printed, `${at(c)}: no recipe line in\n${r.stdout}`).not.toBeNull();
      const run = { epochs: Number(printed![1]), optimizer: printed![2], server: printed![3] };
      for (const [k, v] of Object.entries(stated))
        expect(
          run[k as keyof typeof run],
          `${at(c)}: the comment says ${k} ${v}; the run would use ${JSON.stringify(run)}`,
        ).toBe(v);
    });
  });

  it("wrangler's account commands exist as written in the pinned wrangler (--help; they need a Cloudflare account), and name what wrangler.toml and the Worker use", async () => {
    const toml = read('wrangler.toml');
    await each(
      BLOCK.filter((c) => !c.skip && checkFor(c.command)?.kind === 'wrangler'),
      async (c) => {
        const { args } = checkFor(c.command) as Extract<Check, { kind: 'wrangler' }>;
        // `wrangler` is what `npx wrangler` runs from the clone (node_modules/.bin), without npx's own start.
        const r = await shell(`wrangler ${args.join(' ')} --help`, ROOT);
        expect(r.status, `${at(c)} --help: ${r.stderr}`).toBe(0);
        // wrangler answers --help of an unknown subcommand with its parent's help: the usage line must be this command.
        const usage = r.stdout.trim().split('\n')[0]!.trim().split(/\s+/).slice(1);
        const fixed = usage.filter((w) => !/^[<[]/.test(w));
        const words = args.filter((a) => !a.startsWith('-'));
        expect(words.slice(0, fixed.length), `${at(c)}: wrangler's usage is 'wrangler ${usage.join(' ')}'`).toEqual(
          fixed,
        );
        expect(words.length, `${at(c)}: wrangler's usage is 'wrangler ${usage.join(' ')}'`).toBe(
          fixed.length + usage.filter((w) => w.startsWith('<')).length,
        );
        if (words[0] === 'r2' && words[2] === 'create') expect(toml).toContain(`bucket_name = "${words[3]}"`);
        if (words[0] === 'secret' && words[1] === 'put')
          expect(spawnSync('grep', ['-rl', words[2]!, join(ROOT, 'functions')], { encoding: 'utf8' }).stdout).not.toBe(
            '',
          );
      },
    );
  });

  it("npm start -- --var K:V: this test's server runs with the variables the docs give, wrangler.toml declares them, and they take effect", async () => {
    const toml = read('wrangler.toml');
    for (const [name, value] of Object.entries(SERVER_VARS)) {
      expect(toml, `${name} is not a variable in wrangler.toml [vars]`).toMatch(new RegExp(`^${name} = `, 'm'));
      if (name === 'FEDGE_CORS_ORIGINS') {
        for (const origin of value.split(',')) {
          const r = await fetch(`${server!.url}/v2/health/ready`, { headers: { Origin: origin } });
          expect(r.headers.get('access-control-allow-origin'), origin).toBe(origin);
        }
      }
    }
  });

  it("commands CI runs elsewhere are what the docs say (npm start, npm test, npm run deploy, npm pack, npm install, the examples' builds)", () => {
    for (const c of BLOCK.filter((c) => !c.skip && checkFor(c.command)?.kind === 'elsewhere')) {
      const check = checkFor(c.command) as Extract<Check, { kind: 'elsewhere' }>;
      // Each verify reads the file that runs the command: a renamed or deleted one fails here.
      check.verify();
    }
  });

  it('every `npm run X` names a script and every `node <file>` a file (inline spans too); inline simulate commands accept their options', async () => {
    const problems: string[] = [];
    // A doc about an example app (examples/<app>) may name that app's scripts: `npm run dev` in docs/integrate.md.
    const exampleScripts = (doc: string) =>
      [...new Set([...readDoc(doc).matchAll(/examples\/([\w.-]+)/g)].map((m) => m[1]!))]
        .filter((app) => existsSync(join(ROOT, 'examples', app, 'package.json')))
        .flatMap((app) =>
          Object.keys(
            (JSON.parse(read(`examples/${app}/package.json`)) as { scripts?: Record<string, string> }).scripts ?? {},
          ),
        );
    for (const c of ALL) {
      let dir = '.';
      for (const part of c.command.split(/\s*&&\s*/)) {
        const command = bare(part);
        const cd = /^cd (\S+)$/.exec(command)?.[1];
        if (cd) {
          dir = join(dir, cd);
          if (!existsSync(join(ROOT, dir))) problems.push(`${at(c)}: no directory ${dir}`);
          continue;
        }
        const scripts =
          dir === '.'
            ? pkg.scripts
            : ((JSON.parse(read(join(dir, 'package.json'))) as { scripts?: Record<string, string> }).scripts ?? {});
        const script = /^npm run ([\w:.-]+)/.exec(command)?.[1];
        if (
          script &&
          !scripts[script] &&
          !(c.where === 'inline' && dir === '.' && exampleScripts(c.doc).includes(script))
        )
          problems.push(`${at(c)}: no script '${script}' in ${join(dir, 'package.json')}`);
        const file = /^node ((?:\.\/)?[\w./-]+\.(?:ts|js|mjs))\b/.exec(command)?.[1];
        if (file && !existsSync(join(ROOT, dir, file))) problems.push(`${at(c)}: no file ${join(dir, file)}`);
        for (const builtIn of ['start', 'test'])
          if (new RegExp(`^npm ${builtIn}\\b`).test(command) && !pkg.scripts[builtIn])
            problems.push(`${at(c)}: no script '${builtIn}'`);
      }
    }
    expect(problems).toEqual([]);
    // Bench commands, inline or fenced: their options and environment as bench/cli.ts checks them.
    for (const c of ALL.filter((c) => /^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*npm run bench:/.test(c.command))) {
      const found = benchProblems(normalizeCommand(c.command));
      if (found.length) problems.push(`${at(c)}: ${found.join('; ')}`);
    }
    expect(problems).toEqual([]);
    // Inline simulate commands with real values (not placeholders such as --devices D or --base MODEL[@VERSION]).
    const inline = [
      ...new Set(
        ALL.filter(
          (c) =>
            c.where === 'inline' &&
            /^npm run simulate -- /.test(c.command) &&
            !/\s(?:[A-Z][A-Z0-9_[\]@:.]*|\S*…\S*)(?=\s|$)/.test(c.command),
        ).map((c) => normalizeCommand(c.command)),
      ),
    ];
    for (const command of inline) {
      const r = checkInProcess(`${command} --check`);
      expect(r.status, `${command} --check: ${r.stderr}`).toBe(0);
    }
  });

  it('npm run simulate -- --base refuses, against a running edge, what the README says it refuses: a model that does not take digits, a model it does not serve', async () => {
    const base = async (model: string) => shell(`node simulate/simulate.ts --url ${server!.url} --base ${model}`, ROOT);
    const [text, missing] = await Promise.all([base('spam-bow'), base('no-such-model')]);
    expect(text.status, text.stderr).toBe(2);
    expect(text.stderr).toMatch(
      /^npm run simulate: --base spam-bow takes 'input' FP32 \[-1,4096\] \(text, through a featurizer\); the simulation has data for MNIST digits only: .*mnist-mlp and mnist-cnn\n$/,
    );
    expect(missing.status, missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(
      /--base no-such-model: http:\/\/127\.0\.0\.1:\d+ serves no such model \(it serves [^)]*mnist-cnn/,
    );
    for (const r of [text, missing]) expect(r.stdout).toBe('');
  });

  it('every time the docs state for a command agrees with a figure test/docs/record-timing.ts recorded (test/docs/timings.json)', () => {
    const records = readTimings();
    const problems: string[] = [];
    let copied = 0;
    for (const d of DOCS) {
      for (const t of statedTimings(d, readDoc(d))) {
        const mine = records.filter((r) => normalizeCommand(r.command) === t.command);
        const last = mine.at(-1);
        if (!last) {
          problems.push(
            `${d}:${t.line} states ${t.text} for \`${t.command}\`, and no figure is recorded: node test/docs/record-timing.ts '${t.command}'`,
          );
          continue;
        }
        if (last.by !== 'test/docs/record-timing.ts') copied++;
        if (!agrees(t.seconds, last.seconds))
          problems.push(
            `${d}:${t.line} states ${t.text} for \`${t.command}\`; recorded ${(last.seconds / 60).toFixed(1)} min (${last.recorded}, ${last.by})`,
          );
      }
    }
    if (copied)
      console.log(
        `${copied} stated times agree with figures measured before test/docs/record-timing.ts existed (their "by" says where from); re-record them with it`,
      );
    expect(problems).toEqual([]);
  });
});
