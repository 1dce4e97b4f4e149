/**
 * `npm run simulate`'s command line: the options, their checks and the run they describe (scenario, recipe,
 * privacy), without importing anything heavy — so `--help` and `--check` answer at once, and a bad option is one
 * line and exit code 2 before a server starts or data loads. The docs test (test/docs/commands.test.ts) runs every
 * documented simulate command with `--check`.
 */
import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run simulate -- [options]

Simulated devices (Participants in this process) run a federated task with SecAgg+ and dropouts against the local
edge server (started on a free port and stopped at the end, unless --url is given). Each round prints a progress bar
and the served model's held-out accuracy through the OIP endpoint; results go to simulate/results/<task>.json.

what trains
  (default)                  the bundled mnist-mlp, every layer, on non-IID MNIST (2 digits per device)
  --init served|random       from the served mnist-mlp's fp32 weights (default) or from random weights
  --base MODEL[@VERSION]     the head of a served model (a task with base + trainable): devices embed their digits
                             with the frozen body and train its last dense layer. The model must take MNIST digits:
                             one FP32 input of 784 values per example ([-1,784], [-1,28,28], [-1,1,28,28] or
                             [-1,28,28,1]) and 10 classes out — e.g. --base mnist-cnn; others are refused
  --trainable head|head:N    with --base: the last N dense layers (default head)
  --scenario finetune        pretrain on public data no device holds, devices hold the rest; also trains the
                             baselines (central, central DP, local-only)
    --data mnist|spam        MNIST digits (default) or spam-bow on SpamAssassin mailboxes
    --split dirichlet|pathological   --alpha 0.5   how MNIST labels are spread over devices
  --shard-size S [--threads T]   sharded rounds at scale over worker threads (simulate/at-scale.ts)
  --scenario lm              federated fine-tuning of the served language model (fedge-gpt's LoRA) by users
                             writing their own text (SpamAssassin ham by sender, 80/20 by time), with its baselines
                             (base, central, central DP, local-only) scored alike (simulate/lm-scenario.ts)
    --rank 4   --windows 16 (64-token training windows per user)   --eval-windows 8 (held-out, per user)

rounds
  --devices 100 (lm: 20 users)   --per-round 20 (finetune: every device; lm: 10)   --rounds 20   --dropout 0.3
  --stage-seconds 5 (finetune: 30; sharded: 30; lm: 20)   --task NAME

privacy
  --dp [--epsilon 3] [--sigma 2.5]                 DP-SGD on every device (example-level, δ 1e-5)
  --distributed-dp [--dd-clip 0.5] [--dd-sigma 0.5]   client-level DDGauss noise under SecAgg+

local training and server (override the recipe the run prints)
  --local-epochs N   --lr X   --optimizer sgd|momentum|adam   --server fedavg|fedavgm|fedadam   --server-lr X

other
  --url URL     an edge that is already running (admin token: FEDGE_ADMIN_TOKEN, default dev-admin-token)
  --check       check the options, print the run they describe, and exit without running it
  --help        this text`;

/** A command line the simulation cannot run: one line on stderr and exit code 2, never a stack trace. */
export class SimulateUsageError extends Error {
  override name = 'SimulateUsageError';
}

export type Optimizer = 'sgd' | 'momentum' | 'adam';
export type ServerKind = 'fedavg' | 'fedavgm' | 'fedadam';

export interface Recipe {
  training: { epochs: number; batchSize: number; learningRate: number; optimizer: Optimizer };
  serverOptimizer: { kind: ServerKind; learningRate: number; momentum?: number };
}

export interface SimulateOptions {
  check: boolean;
  url?: string | undefined;
  task?: string | undefined;
  devices: number;
  perRound: number;
  rounds: number;
  dropout: number;
  stageSeconds: number;
  /** 'served' | 'finetune' | 'base' (a served model's head) | 'scale' (sharded rounds, at-scale.ts) | 'lm' (lm-scenario.ts) */
  scenario: 'served' | 'finetune' | 'base' | 'scale' | 'lm';
  /** --scenario lm: LoRA rank, training windows per user, held-out windows per user scored. */
  lm?: { rank: number; windows: number; evalWindows: number } | undefined;
  init: 'served' | 'random';
  data: 'mnist' | 'spam';
  split: 'dirichlet' | 'pathological';
  alpha: number;
  base?: { model: string; version?: string | undefined; trainable: string } | undefined;
  shardSize?: number | undefined;
  threads?: number | undefined;
  privacy?: { l2NormClip: number; noiseMultiplier: number; delta: number; epsilon: number } | undefined;
  /** The ε central DP-SGD is held to in the finetune baselines (--epsilon, with or without --dp). */
  epsilon: number;
  distributedDp?: { clip: number; noiseMultiplier: number; delta: number } | undefined;
  recipe: Recipe;
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  check: { type: 'boolean' },
  url: { type: 'string' },
  devices: { type: 'string' },
  'per-round': { type: 'string' },
  rounds: { type: 'string' },
  dropout: { type: 'string' },
  dp: { type: 'boolean' },
  epsilon: { type: 'string' },
  sigma: { type: 'string' },
  'stage-seconds': { type: 'string' },
  task: { type: 'string' },
  init: { type: 'string' },
  base: { type: 'string' },
  trainable: { type: 'string' },
  scenario: { type: 'string' },
  split: { type: 'string' },
  alpha: { type: 'string' },
  'shard-size': { type: 'string' },
  threads: { type: 'string' },
  'distributed-dp': { type: 'boolean' },
  'local-epochs': { type: 'string' },
  lr: { type: 'string' },
  optimizer: { type: 'string' },
  server: { type: 'string' },
  'server-lr': { type: 'string' },
  'dd-clip': { type: 'string' },
  'dd-sigma': { type: 'string' },
  data: { type: 'string' },
  rank: { type: 'string' },
  windows: { type: 'string' },
  'eval-windows': { type: 'string' },
} as const;

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value))
    throw new SimulateUsageError(
      `--${flag} must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}, got '${value}'`,
    );
  return value as T;
}

function number(
  flag: string,
  value: string | undefined,
  fallback: number,
  o: { integer?: boolean; min?: number; max?: number; above?: number } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  const ok =
    value.trim() !== '' &&
    Number.isFinite(n) &&
    (!o.integer || Number.isSafeInteger(n)) &&
    (o.min === undefined || n >= o.min) &&
    (o.max === undefined || n <= o.max) &&
    (o.above === undefined || n > o.above);
  if (!ok) {
    const what = [
      o.integer ? 'an integer' : 'a number',
      o.min !== undefined && `≥ ${o.min}`,
      o.above !== undefined && `> ${o.above}`,
      o.max !== undefined && `≤ ${o.max}`,
    ]
      .filter(Boolean)
      .join(' ');
    throw new SimulateUsageError(`--${flag} must be ${what}, got '${value}'`);
  }
  return n;
}

/**
 * The recipe each scenario starts from. Fine-tuning the served model (already trained on the devices' digits), or
 * the head of a served model on fixed features, wants small local steps and a plain average; from random weights or
 * a model pretrained on little public data, longer local training or server momentum (FedAvgM, Hsu et al. 2019)
 * make up for the non-IID split.
 */
function defaultRecipe(
  scenario: SimulateOptions['scenario'],
  init: 'served' | 'random',
  data: 'mnist' | 'spam',
): Recipe {
  if (scenario === 'lm')
    // LoRA's B from 0 on every device each round: a few Adam steps of one epoch over the user's windows, averaged.
    return {
      training: { epochs: 1, batchSize: 4, learningRate: 0.005, optimizer: 'adam' },
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
    };
  if (scenario === 'base')
    return {
      training: { epochs: 2, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' },
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
    };
  if (scenario === 'finetune' && data === 'mnist') {
    // From a model pretrained on little public data, on label-skewed devices: one short local epoch of plain SGD
    // (little client drift) and server momentum to carry the average across rounds. In a FedAvg proxy sweep (same
    // data and Trainer, no SecAgg; 20 rounds, all devices asked) this reached the central baseline (95.2 % vs
    // 95.25 %); local Adam for 5 epochs with a plain average stopped at 93.6 %, 1 epoch of SGD at lr 0.05 at 94.0 %,
    // FedAdam at 94.3 %.
    return {
      training: { epochs: 1, batchSize: 10, learningRate: 0.1, optimizer: 'sgd' },
      serverOptimizer: { kind: 'fedavgm', learningRate: 1, momentum: 0.9 },
    };
  }
  // spam-bow (a bag-of-words softmax): local Adam steps and a plain average moved it most in a short sweep.
  if (scenario === 'finetune')
    return {
      training: { epochs: 5, batchSize: 10, learningRate: 0.001, optimizer: 'adam' },
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
    };
  if (init === 'served')
    return {
      training: { epochs: 2, batchSize: 10, learningRate: 0.02, optimizer: 'sgd' },
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
    };
  return {
    training: { epochs: 5, batchSize: 10, learningRate: 0.05, optimizer: 'sgd' },
    serverOptimizer: { kind: 'fedavgm', learningRate: 1, momentum: 0.9 },
  };
}

/** `model`, `model@version`: a served model's name as the registry allows it, and an optional version or alias. */
function parseBase(text: string, trainable: string): NonNullable<SimulateOptions['base']> {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:@([A-Za-z0-9][A-Za-z0-9._-]*))?$/.exec(text);
  if (!m)
    throw new SimulateUsageError(
      `--base must be MODEL or MODEL@VERSION (e.g. mnist-cnn or mnist-cnn@1), got '${text}'`,
    );
  if (!/^head(:[1-9]\d*)?$/.test(trainable))
    throw new SimulateUsageError(`--trainable must be head or head:N, got '${trainable}'`);
  return { model: m[1]!, version: m[2], trainable };
}

/** Parses and checks `args`; throws SimulateUsageError with one line for anything it cannot run. `null` for --help. */
export function parseSimulateArgs(args: string[]): SimulateOptions | null {
  let a: ReturnType<
    typeof parseArgs<{ options: typeof OPTIONS; args: string[]; strict: true; allowPositionals: false }>
  >['values'];
  try {
    a = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // node:util's messages carry a hint for a different CLI ("To specify a positional argument starting with a '-'…"): keep the first sentence.
    const message = (e as Error).message.split(/\. (?=To )/)[0]!.replace(/\.$/, '');
    throw new SimulateUsageError(message);
  }
  if (a.help) return null;
  const scenarioArg = oneOf('scenario', a.scenario, ['served', 'finetune', 'lm'] as const, 'served');
  if (scenarioArg !== 'lm' && (a.rank !== undefined || a.windows !== undefined || a['eval-windows'] !== undefined))
    throw new SimulateUsageError('--rank, --windows and --eval-windows are for --scenario lm');
  if (scenarioArg === 'lm') {
    const other = (
      [
        'base',
        'init',
        'data',
        'split',
        'alpha',
        'shard-size',
        'threads',
        'distributed-dp',
        'server',
        'server-lr',
        'trainable',
      ] as const
    ).find((k) => a[k] !== undefined);
    if (other)
      throw new SimulateUsageError(
        `--${other} does not apply to --scenario lm (a LoRA task on fedge-gpt, plain FedAvg; see --help)`,
      );
  }
  if (a.base !== undefined && scenarioArg === 'finetune')
    throw new SimulateUsageError(
      "--base trains a served model's head on the served scenario's data; it does not combine with --scenario finetune (which pretrains its own model)",
    );
  if (a.base !== undefined && a.init !== undefined)
    throw new SimulateUsageError(
      "--init chooses the mnist-mlp task's start; with --base the task starts from the served model's own head",
    );
  if (a.trainable !== undefined && a.base === undefined)
    throw new SimulateUsageError('--trainable needs --base MODEL[@VERSION]');
  if (a['shard-size'] !== undefined && (a.base !== undefined || scenarioArg === 'finetune'))
    throw new SimulateUsageError(
      '--shard-size runs the sharded mnist-mlp rounds (simulate/at-scale.ts); it does not combine with --base or --scenario finetune',
    );
  const scenario: SimulateOptions['scenario'] =
    a['shard-size'] !== undefined ? 'scale' : a.base !== undefined ? 'base' : scenarioArg;
  const init = oneOf('init', a.init, ['served', 'random'] as const, 'served');
  const data = oneOf('data', a.data, ['mnist', 'spam'] as const, 'mnist');
  if (data === 'spam' && scenario !== 'finetune')
    throw new SimulateUsageError('--data spam runs with --scenario finetune');
  const split = oneOf('split', a.split, ['dirichlet', 'pathological'] as const, 'dirichlet');
  const devices = number('devices', a.devices, scenario === 'lm' ? 20 : 100, { integer: true, min: 3 });
  if (scenario === 'lm' && devices > 74)
    throw new SimulateUsageError(
      `--devices ${devices}: SpamAssassin has 74 senders with ≥ 10 messages of their own (feeds excluded)`,
    );
  const perRound = number(
    'per-round',
    a['per-round'],
    scenario === 'finetune' || scenario === 'scale' ? devices : scenario === 'lm' ? Math.min(10, devices) : 20,
    {
      integer: true,
      min: 3,
    },
  );
  if (perRound > devices)
    throw new SimulateUsageError(`--per-round (${perRound}) cannot be more than --devices (${devices})`);
  const rounds = number('rounds', a.rounds, 20, { integer: true, min: 1 });
  const dropout = number('dropout', a.dropout, 0.3, { min: 0, max: 0.9 });
  const stageSeconds = number(
    'stage-seconds',
    a['stage-seconds'],
    scenario === 'finetune' || scenario === 'scale' ? 30 : scenario === 'lm' ? 20 : 5,
    { above: 0 },
  );
  const epsilon = number('epsilon', a.epsilon, 3, { above: 0 });
  const sigma = number('sigma', a.sigma, 2.5, { above: 0 });
  const shardSize =
    a['shard-size'] === undefined ? undefined : number('shard-size', a['shard-size'], 0, { integer: true, min: 3 });
  const threads = a.threads === undefined ? undefined : number('threads', a.threads, 1, { integer: true, min: 1 });
  if (a.threads !== undefined && scenario !== 'scale')
    throw new SimulateUsageError('--threads is for sharded rounds (--shard-size S)');
  if (scenario === 'scale' && (a.dp || a['distributed-dp']))
    throw new SimulateUsageError('the sharded rounds (--shard-size) run without DP: drop --dp / --distributed-dp');
  const defaults = defaultRecipe(scenario, init, data);
  const recipe: Recipe = {
    training: {
      ...defaults.training,
      ...(a['local-epochs'] !== undefined && {
        epochs: number('local-epochs', a['local-epochs'], 1, { integer: true, min: 1 }),
      }),
      ...(a.lr !== undefined && { learningRate: number('lr', a.lr, 0, { above: 0 }) }),
      optimizer: oneOf('optimizer', a.optimizer, ['sgd', 'momentum', 'adam'] as const, defaults.training.optimizer),
    },
    serverOptimizer: {
      ...defaults.serverOptimizer,
      kind: oneOf('server', a.server, ['fedavg', 'fedavgm', 'fedadam'] as const, defaults.serverOptimizer.kind),
      ...(a['server-lr'] !== undefined && { learningRate: number('server-lr', a['server-lr'], 1, { above: 0 }) }),
    },
  };
  const o: SimulateOptions = {
    check: a.check ?? false,
    url: a.url,
    task: a.task,
    devices,
    perRound,
    rounds,
    dropout,
    stageSeconds,
    scenario,
    lm:
      scenario === 'lm'
        ? {
            rank: number('rank', a.rank, 4, { integer: true, min: 1, max: 64 }),
            windows: number('windows', a.windows, 16, { integer: true, min: 1 }),
            evalWindows: number('eval-windows', a['eval-windows'], 8, { integer: true, min: 1 }),
          }
        : undefined,
    init,
    data,
    split,
    alpha: number('alpha', a.alpha, 0.5, { above: 0 }),
    base: a.base === undefined ? undefined : parseBase(a.base, a.trainable ?? 'head'),
    shardSize,
    threads,
    privacy: a.dp ? { l2NormClip: 1, noiseMultiplier: sigma, delta: 1e-5, epsilon } : undefined,
    epsilon,
    // Client-level DP (DDGauss, Kairouz et al. 2021): each device's whole update clipped to L2 `clip` and noised so
    // the sum carries noise of std σ·clip per coordinate.
    distributedDp: a['distributed-dp']
      ? {
          clip: number('dd-clip', a['dd-clip'], 0.5, { above: 0 }),
          noiseMultiplier: number('dd-sigma', a['dd-sigma'], 0.5, { above: 0 }),
          delta: 1e-5,
        }
      : undefined,
    recipe,
  };
  if (a.url !== undefined && !/^https?:\/\/[^\s/]+/.test(a.url))
    throw new SimulateUsageError(`--url must be an http(s) URL such as http://127.0.0.1:8787, got '${a.url}'`);
  if (a.task !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(a.task))
    throw new SimulateUsageError(`--task must be a name of letters, digits, '.', '_' and '-', got '${a.task}'`);
  return o;
}

/** What a run trains, in words: `training: …; server: …`, as the run prints it before its first round. */
export function recipeLine(r: Recipe): string {
  return `local training: ${r.training.epochs} epoch${r.training.epochs === 1 ? '' : 's'}, batch ${r.training.batchSize}, lr ${r.training.learningRate} (${r.training.optimizer}); server: ${r.serverOptimizer.kind}, lr ${r.serverOptimizer.learningRate}${r.serverOptimizer.momentum !== undefined && r.serverOptimizer.kind === 'fedavgm' ? `, momentum ${r.serverOptimizer.momentum}` : ''}`;
}

/** DP in words, for the run's header and its last line: what is on, or that there is none. */
export function privacyLine(o: Pick<SimulateOptions, 'privacy' | 'distributedDp'>): string {
  const parts = [
    o.privacy &&
      `DP-SGD on each device (σ ${o.privacy.noiseMultiplier}, budget ε ${o.privacy.epsilon}, δ ${o.privacy.delta})`,
    o.distributedDp && `client-level DDGauss (σ ${o.distributedDp.noiseMultiplier}, clip ${o.distributedDp.clip})`,
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'no DP';
}

/** The whole run `--check` describes: what trains, rounds, privacy, recipe. */
export function describeRun(o: SimulateOptions): string {
  if (o.scenario === 'lm')
    return [
      `the lm scenario: fedge-gpt's lora:${o.lm!.rank} fine-tuned by ${o.devices} users (SpamAssassin ham by sender, each one's mail 80/20 by time; ≤ ${o.lm!.windows} training windows of 64 tokens per user, ≤ ${o.lm!.evalWindows} held-out windows per user scored), ${o.perRound} per round, ${o.rounds} rounds, ${o.dropout * 100}% dropping out, ${o.stageSeconds} s stages, SecAgg+ on, ${privacyLine(o)}`,
      `${recipeLine(o.recipe)}; baselines in the same run, scored alike (perplexity, next-token top-1; users' held-out and public held-out text): base, central (same steps), ${o.privacy ? `central DP-SGD at ε ${o.epsilon}, ` : ''}local-only`,
      o.url ? `against ${o.url}` : 'against a local edge server it starts on a free port',
    ].join('\n');
  const what =
    o.scenario === 'base'
      ? `the ${o.base!.trainable} of the served ${o.base!.model}${o.base!.version ? `@${o.base!.version}` : ''} on non-IID MNIST (2 digits per device)`
      : o.scenario === 'finetune'
        ? `the finetune scenario on ${o.data === 'spam' ? 'spam-bow, SpamAssassin mailboxes' : `mnist-mlp, MNIST (${o.split === 'dirichlet' ? `Dirichlet α ${o.alpha}` : 'pathological: 2 digits each'})`}, with its baselines`
        : o.scenario === 'scale'
          ? `sharded rounds of mnist-mlp in shards of ≤ ${o.shardSize}`
          : `mnist-mlp from ${o.init === 'served' ? 'the served weights' : 'random weights'} on non-IID MNIST (2 digits per device)`;
  const lines = [
    `${what}: ${o.devices} devices, ${o.perRound} per round, ${o.rounds} rounds, ${o.dropout * 100}% dropping out, ${o.stageSeconds} s stages, SecAgg+ on, ${privacyLine(o)}`,
    o.scenario === 'scale'
      ? 'local training: 1 epoch, batch 10, lr 0.02 (sgd); server: fedavg, lr 1'
      : recipeLine(o.recipe),
    o.url ? `against ${o.url}` : 'against a local edge server it starts on a free port',
  ];
  return lines.join('\n');
}
