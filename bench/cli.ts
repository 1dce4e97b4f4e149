/**
 * The benchmarks' command line, imported first by each bench script (`import './cli.ts';`), so it runs before
 * anything heavy loads: `--help` prints what the bench does and the options and environment variables it reads
 * (exit 0, nothing run); `--check` validates them and exits 0 without running; an unknown option or a bad value is
 * one line and a hint on stderr, exit code 2 — never minutes of benchmark with a setting silently ignored.
 * The docs test (test/docs/commands.test.ts) checks every documented `npm run bench:*` command with checkBench.
 */
import { basename } from 'node:path';

interface Setting {
  help: string;
  /** undefined when the value is fine, else what it must be. */
  check: (value: string) => string | undefined;
}

interface Bench {
  script: string;
  about: string;
  options?: Record<string, Setting>;
  env?: Record<string, Setting>;
}

const int =
  (min = 1, max = Number.MAX_SAFE_INTEGER): Setting['check'] =>
  (v) =>
    /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max
      ? undefined
      : `an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`;
const ints: Setting['check'] = (v) =>
  v.split(',').every((x) => /^\d+$/.test(x.trim()) && Number(x) > 0)
    ? undefined
    : 'a comma-separated list of positive integers';
const share: Setting['check'] = (v) =>
  v.trim() !== '' && Number(v) >= 0 && Number(v) < 1 ? undefined : 'a number from 0 to below 1';
const shares: Setting['check'] = (v) =>
  v.split(',').every((x) => share(x.trim()) === undefined)
    ? undefined
    : 'a comma-separated list of numbers from 0 to below 1';
const oneOf =
  (...values: string[]): Setting['check'] =>
  (v) =>
    values.includes(v)
      ? undefined
      : values.length === 1
        ? values[0]
        : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
const listOf =
  (...values: string[]): Setting['check'] =>
  (v) =>
    v.split(',').every((x) => values.includes(x.trim())) ? undefined : `a comma-separated list of ${values.join(', ')}`;
const REQUESTS = { help: 'requests per measurement', check: int() };

/** Keyed by the script's file name (process.argv[1]). */
export const BENCHES: Record<string, Bench> = {
  'inference.ts': {
    script: 'bench:inference',
    about:
      'inference latency and throughput on five servers (workerd, npm start, wrangler dev, ort-web, ort-node), three models',
    env: {
      BENCH_REQUESTS: { help: 'requests per model, server and concurrency (default 2000)', check: REQUESTS.check },
    },
  },
  'profile-inference.ts': {
    script: 'bench:profile',
    about: 'a CPU profile of the inference route inside workerd',
    env: { BENCH_REQUESTS: { help: 'requests while profiling (default 6000)', check: REQUESTS.check } },
  },
  'mixed-load.ts': {
    script: 'bench:load',
    about: 'a mixed valid/invalid load on the bundle on workerd and on wrangler dev, with their memory',
    options: {
      '--seconds': { help: 'seconds of load after the warm-up (default 60, at most 600)', check: int(1, 600) },
      '--connections': { help: 'concurrent connections (default 64, at most 256)', check: int(1, 256) },
      '--warmup': { help: 'seconds of warm-up (default 20, at most 120)', check: int(0, 120) },
      '--only': {
        help: 'a regular expression: only the kinds of request whose label matches',
        check: (v) => {
          try {
            new RegExp(v);
            return undefined;
          } catch {
            return 'a regular expression';
          }
        },
      },
      '--server': { help: 'bundle, dev or both (default)', check: oneOf('bundle', 'dev', 'both') },
    },
  },
  'quantize.ts': {
    script: 'bench:quantize',
    about: 'int8/fp16 latency of the default models in onnxruntime-web, and the third-party corpus quantized',
    env: {
      BENCH_RUNS: { help: 'runs per model and setting (default 400)', check: int() },
      BENCH_QUANTIZE: { help: 'corpus: only the third-party corpus part', check: oneOf('corpus') },
    },
  },
  'secagg.ts': {
    script: 'bench:secagg',
    about: 'SecAgg+ client and server cost on one core',
    env: {
      BENCH_N: { help: 'devices, a list (default 100,500,1000)', check: ints },
      BENCH_D: { help: 'words, a list (default 10000,100000)', check: ints },
      BENCH_DROP: { help: 'dropout shares, a list (default 0,0.1,0.3)', check: shares },
    },
  },
  'secagg-sharded.ts': {
    script: 'bench:secagg:sharded',
    about: 'SecAgg+ server cost of rounds split into shards, over worker threads',
    env: {
      BENCH_N: { help: 'devices, a list (default 500,1000)', check: ints },
      BENCH_D: { help: 'words, a list (default 100000)', check: ints },
      BENCH_DROP: { help: 'dropout share (default 0.3)', check: share },
      BENCH_SHARD: { help: 'devices per shard (default 100)', check: int(3) },
      BENCH_WORKERS: { help: 'worker threads (default: the cores)', check: int() },
    },
  },
  'dp.ts': {
    script: 'bench:dp',
    about: 'DP-SGD throughput against plain SGD, and held-out accuracy of DP training at ε 2 and 8',
    env: {
      BENCH_DP: {
        help: 'parts: throughput, accuracy (= scratch, public, scatter), or chart (redraw only); a list',
        check: listOf('throughput', 'accuracy', 'scratch', 'public', 'scatter', 'chart'),
      },
      BENCH_DP_EVAL: {
        help: 'validation: choose recipes on the last 1,000 training digits, never the held-out set',
        check: oneOf('validation'),
      },
    },
  },
  'browser.ts': {
    script: 'bench:browser',
    about: "the client SDK's bundle sizes and LocalModel latency in Chromium (WebGPU, WASM) against the edge",
    env: { BENCH_RUNS: { help: 'runs per provider (default 200)', check: int() } },
  },
  'robust.ts': {
    script: 'bench:robust',
    about:
      "one or two malicious devices of 20 (blow-up, stalled weight, backdoor) against the task's defences: clean accuracy, backdoor success, rounds published, server time",
    env: {
      BENCH_ROUNDS: { help: 'rounds per configuration (default 10)', check: int(1, 100) },
      BENCH_ENCODING: { help: 'fixed, ddgauss or both (default both)', check: oneOf('fixed', 'ddgauss', 'both') },
    },
  },
  'generate.ts': {
    script: 'bench:generate',
    about:
      'text generation with fedge-gpt, one prompt, greedy, the same new tokens everywhere: time to first token and decode tokens/s on the edge (workerd, 1 and 8 streams), the shared decode loop on onnxruntime-web and onnxruntime-node in Node, and LocalModel against transformers.js in Chromium (WASM, WebGPU)',
    env: {
      BENCH_TOKENS: { help: 'new tokens per generation (default 64)', check: int(2, 200) },
      BENCH_RUNS: { help: 'timed generations per contestant, after one warm-up (default 5)', check: int(1, 100) },
      BENCH_STREAMS: {
        help: 'concurrent streams on the edge, a list (default 1,8)',
        check: (v) =>
          v.split(',').every((x) => int(1, 32)(x.trim()) === undefined)
            ? undefined
            : 'a comma-separated list of integers from 1 to 32',
      },
      BENCH_GENERATE: {
        help: 'parts: node, edge, browser, a list (default all three; the ort-web reference runs always); or chart (redraw only)',
        check: listOf('node', 'edge', 'browser', 'chart'),
      },
    },
  },
  'demo.ts': {
    script: 'bench:demo',
    about: 'from npm start to the first published demo round on screen, from cold servers',
    env: { RUNS: { help: 'cold runs (default 3)', check: int() } },
  },
};

export function benchUsage(b: Bench): string {
  const rows = (title: string, settings: Record<string, Setting> | undefined, prefix: string) =>
    settings && Object.keys(settings).length
      ? `\n${title}\n${Object.entries(settings)
          .map(([k, s]) => `  ${(prefix === '' ? `${k} X` : `${k}=X`).padEnd(18)} ${s.help}`)
          .join('\n')}`
      : '';
  return `usage: ${b.env ? '[VAR=value …] ' : ''}npm run ${b.script}${b.options ? ' -- [options]' : ''}

${b.about}.
${rows('options', b.options, '')}${rows('environment', b.env, 'env')}

  --check            check the options and environment, say what would run, and exit
  --help             this text`;
}

/** Problems with a bench's command line and environment: [] when it may run. */
export function checkBench(file: string, args: string[], env: Record<string, string | undefined>): string[] {
  const b = BENCHES[file];
  if (!b) return [`no bench ${file}`];
  const problems: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--check' || a === '--help' || a === '-h') continue;
    const [name, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const option = b.options?.[name];
    if (!option) {
      problems.push(a.startsWith('-') ? `unknown option '${a}'` : `unexpected argument '${a}'`);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) problems.push(`${name} needs a value`);
    else {
      const want = option.check(value);
      if (want) problems.push(`${name} must be ${want}, got '${value}'`);
    }
  }
  for (const [name, setting] of Object.entries(b.env ?? {})) {
    const value = env[name];
    if (value === undefined) continue;
    const want = setting.check(value);
    if (want) problems.push(`${name} must be ${want}, got '${value}'`);
  }
  // A BENCH_* variable this bench does not read is most likely a typo (BENCH_DROPS): refused by --check only, since
  // `npm run bench` runs every bench under one environment.
  if (args.includes('--check'))
    for (const name of Object.keys(env))
      if (name.startsWith('BENCH_') && !b.env?.[name]) problems.push(`${name} is not read by npm run ${b.script}`);
  return problems;
}

const file = basename(process.argv[1] ?? '');
const bench = BENCHES[file];
if (bench) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(benchUsage(bench));
    process.exit(0);
  }
  const problems = checkBench(file, args, process.env);
  if (problems.length) {
    console.error(
      `npm run ${bench.script}: ${problems.join('; ')}\n(npm run ${bench.script} -- --help lists the options)`,
    );
    process.exit(2);
  }
  if (args.includes('--check')) {
    const set = Object.keys(bench.env ?? {})
      .filter((k) => process.env[k] !== undefined)
      .map((k) => `${k}=${process.env[k]}`);
    console.log(
      `npm run ${bench.script}: the options are valid; this command would run ${bench.about}${set.length ? ` (${set.join(', ')})` : ''}${args.length > 1 ? ` with ${args.filter((a) => a !== '--check').join(' ')}` : ''}`,
    );
    process.exit(0);
  }
}
