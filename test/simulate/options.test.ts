/**
 * `npm run simulate`'s command line (simulate/options.ts): --help and bad options answered at once, without a stack
 * trace; the recipe each scenario runs, as the run prints it; --base checked before a server starts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimulateUsageError, describeRun, parseSimulateArgs, privacyLine, recipeLine } from '../../simulate/options.ts';

const root = join(import.meta.dirname, '../..');
const simulate = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'simulate/simulate.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });
const parse = (...args: string[]) => parseSimulateArgs(args)!;

describe('npm run simulate: options', () => {
  it('--help prints the usage and exits 0; an unknown or bad option is one line and a hint, exit 2, no stack trace', () => {
    const help = simulate('--help');
    expect(help.status).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(/^usage: npm run simulate -- \[options\]/);
    for (const flag of ['--base', '--check', '--scenario finetune', '--dp', '--shard-size'])
      expect(help.stdout).toContain(flag);
    for (const [args, message] of [
      [['--bogus'], "Unknown option '--bogus'"],
      [['--init', 'sideways'], "--init must be served or random, got 'sideways'"],
      [['--devices', 'many'], "--devices must be an integer ≥ 3, got 'many'"],
      [['--base', 'mnist-cnn', '--scenario', 'finetune'], 'does not combine with --scenario finetune'],
      [['--per-round', '5'], 'use --per-round 6 or more'],
    ] as const) {
      const r = simulate(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(2);
      expect(lines[0]).toContain(message);
      expect(lines[1]).toBe('(npm run simulate -- --help lists the options)');
    }
  });

  it('--check prints the run the options describe and exits 0, before any server or data', () => {
    const r = simulate(
      '--scenario',
      'finetune',
      '--data',
      'spam',
      '--devices',
      '50',
      '--per-round',
      '20',
      '--stage-seconds',
      '5',
      '--check',
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      'the finetune scenario on spam-bow, SpamAssassin mailboxes, with its baselines: 50 devices, 20 per round, 20 rounds, 30% dropping out, 5 s stages, SecAgg+ on, no DP',
    );
    expect(r.stdout).toContain('local training: 5 epochs, batch 10, lr 0.001 (adam); server: fedavg, lr 1');
    expect(r.stdout).not.toContain('starting the local edge server');
  });

  it("each scenario's recipe and stage length, and the overrides", () => {
    expect(recipeLine(parse().recipe)).toBe('local training: 2 epochs, batch 10, lr 0.02 (sgd); server: fedavg, lr 1');
    expect(recipeLine(parse('--init', 'random').recipe)).toBe(
      'local training: 5 epochs, batch 10, lr 0.05 (sgd); server: fedavgm, lr 1, momentum 0.9',
    );
    const mnist = parse('--scenario', 'finetune');
    expect([mnist.perRound, mnist.stageSeconds]).toEqual([100, 30]);
    expect(recipeLine(mnist.recipe)).toBe(
      'local training: 1 epoch, batch 10, lr 0.1 (sgd); server: fedavgm, lr 1, momentum 0.9',
    );
    expect(recipeLine(parse('--scenario', 'finetune', '--data', 'spam').recipe)).toBe(
      'local training: 5 epochs, batch 10, lr 0.001 (adam); server: fedavg, lr 1',
    );
    const earlier = parse(
      '--scenario',
      'finetune',
      '--per-round',
      '20',
      '--stage-seconds',
      '5',
      '--optimizer',
      'adam',
      '--lr',
      '0.001',
      '--server',
      'fedavg',
      '--local-epochs',
      '5',
    );
    expect(recipeLine(earlier.recipe)).toBe(
      'local training: 5 epochs, batch 10, lr 0.001 (adam); server: fedavg, lr 1',
    );
    expect([earlier.perRound, earlier.stageSeconds]).toEqual([20, 5]);
    const scale = parse('--devices', '1000', '--per-round', '1000', '--shard-size', '100', '--rounds', '2');
    expect([scale.scenario, scale.shardSize, scale.stageSeconds]).toEqual(['scale', 100, 30]);
  });

  it('privacy in words: no DP says so (never "ε 0.00")', () => {
    expect(privacyLine(parse())).toBe('no DP');
    expect(privacyLine(parse('--dp', '--epsilon', '3'))).toBe('DP-SGD on each device (σ 2.5, budget ε 3, δ 0.00001)');
    expect(privacyLine(parse('--distributed-dp', '--dd-clip', '0.2', '--dd-sigma', '0.05'))).toBe(
      'client-level DDGauss (σ 0.05, clip 0.2)',
    );
    expect(describeRun(parse())).toMatch(/SecAgg\+ on, no DP\n/);
  });

  it("--base MODEL[@VERSION] [--trainable head:N]: a task on a served model's head; what does not fit is refused", () => {
    const o = parse('--base', 'mnist-cnn@1', '--trainable', 'head:2', '--dp');
    expect([o.scenario, o.base]).toEqual(['base', { model: 'mnist-cnn', version: '1', trainable: 'head:2' }]);
    expect(describeRun(o)).toMatch(/^the head:2 of the served mnist-cnn@1 on non-IID MNIST/);
    expect(parse('--base', 'mnist-mlp').base).toEqual({ model: 'mnist-mlp', version: undefined, trainable: 'head' });
    for (const args of [
      ['--base', 'a b'],
      ['--base', 'x@'],
      ['--base', 'm', '--trainable', 'all'],
      ['--trainable', 'head'],
      ['--base', 'm', '--init', 'random'],
      ['--base', 'm', '--shard-size', '10'],
    ]) {
      expect(() => parseSimulateArgs(args), args.join(' ')).toThrow(SimulateUsageError);
    }
  });
});
