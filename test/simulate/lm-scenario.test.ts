/**
 * `npm run simulate -- --scenario lm` (simulate/lm-scenario.ts) without a server: its options and the run --check
 * describes, and the users — SpamAssassin ham by sender, each one's own text (no headers, quotes or signatures),
 * split 80/20 by time.
 */
import { describe, expect, it } from 'vitest';
import { SimulateUsageError, describeRun, parseSimulateArgs } from '../../simulate/options.ts';
import { MIN_MESSAGES, TRAIN_SHARE, cleanBody, hamBySender, senderAddress } from '../../simulate/lm-scenario.ts';

describe('npm run simulate -- --scenario lm', () => {
  it('has its defaults and options, refuses the other scenarios’ options, and --check describes the run', () => {
    const o = parseSimulateArgs(['--scenario', 'lm'])!;
    expect(o).toMatchObject({ scenario: 'lm', devices: 20, perRound: 10, rounds: 20, dropout: 0.3, stageSeconds: 20 });
    expect(o.lm).toEqual({ rank: 4, windows: 16, evalWindows: 8 });
    expect(o.recipe.training).toEqual({ epochs: 1, batchSize: 4, learningRate: 0.005, optimizer: 'adam' });
    const dp = parseSimulateArgs(['--scenario', 'lm', '--rank', '8', '--windows', '4', '--dp', '--epsilon', '3'])!;
    expect(dp.lm!.rank).toBe(8);
    expect(describeRun(dp)).toContain("fedge-gpt's lora:8");
    expect(describeRun(dp)).toContain('central DP-SGD at ε 3');
    for (const args of [
      ['--rank', '4'],
      ['--scenario', 'lm', '--alpha', '1'],
      ['--scenario', 'lm', '--devices', '200'],
      ['--scenario', 'lm', '--rank', '0'],
    ])
      expect(() => parseSimulateArgs(args)).toThrow(SimulateUsageError);
  });

  it('cleans a message to what its sender wrote', () => {
    const raw =
      'From: "A. Writer" <Writer@Example.org>\nDate: Mon, 1 Jul 2002 10:00:00 +0000\nSubject: hi\n\nI think so.\nOn Mon, Bob wrote:\n> quoted text\nSee http://example.com/a/very/long/path/that/goes/on/and/on for more.\n-- \nA. Writer, signature';
    expect(senderAddress(raw)).toBe('writer@example.org');
    expect(cleanBody(raw)).toBe('I think so. See for more.');
  });

  it('users are senders of ≥ 10 messages of ham, their mail split 80/20 by time', () => {
    const users = hamBySender();
    expect(users.length).toBe(74);
    for (const u of users) {
      const n = u.train.length + u.heldOut.length;
      expect(n).toBeGreaterThanOrEqual(MIN_MESSAGES);
      expect(u.train.length).toBe(Math.round(n * TRAIN_SHARE));
      expect(u.sender).not.toMatch(/^rssfeeds@/);
    }
  });
});
