/**
 * The rule that closes a round's stages, without a Durable Object: a stage closes when everyone it waits for has
 * answered or at its deadline; check-in with too few devices stays open; unmask finishes (unless a publish retry is
 * pending); answers extend a stage, never past MAX_STAGE_FACTOR × stageSeconds after it opened.
 */
import { describe, expect, it } from 'vitest';
import { MAX_STAGE_FACTOR, extendedDeadline, nextAction } from '../../../federated/aggregation/round-controller.ts';

const rules = { stageSeconds: 10, minStart: 4 };
const at = (now: number, over: Partial<{ deadline: number; force: boolean; retryAt: number }> = {}) => ({
  now,
  deadline: 10_000,
  ...over,
});

describe('round controller', () => {
  it('waits while answers are missing and the deadline is ahead; closes when all answered, however early', () => {
    expect(nextAction({ stage: 'share-keys', answered: 5, expected: 6 }, rules, at(5_000))).toEqual({ kind: 'wait' });
    expect(nextAction({ stage: 'share-keys', answered: 6, expected: 6 }, rules, at(5_000))).toEqual({ kind: 'close' });
    expect(nextAction({ stage: 'masked-input', answered: 2, expected: 6 }, rules, at(10_000))).toEqual({
      kind: 'close',
    });
    expect(nextAction({ stage: 'masked-input', answered: 0, expected: 6 }, rules, at(1, { force: true }))).toEqual({
      kind: 'close',
    });
  });

  it('keeps check-in open past its deadline while fewer than max(minDevices, t + 1) came — nobody has spent anything', () => {
    expect(nextAction({ stage: 'advertise-keys', answered: 3, expected: 10 }, rules, at(10_000))).toEqual({
      kind: 'keep-open',
      deadline: 20_000,
    });
    expect(nextAction({ stage: 'advertise-keys', answered: 4, expected: 10 }, rules, at(10_000))).toEqual({
      kind: 'close',
    });
    expect(nextAction({ stage: 'advertise-keys', answered: 3, expected: 10 }, rules, at(2_000))).toEqual({
      kind: 'wait',
    });
  });

  it('expires check-in that stayed short of devices for idleSeconds after it opened (the deadline never passes that point)', () => {
    const idle = { ...rules, idleSeconds: 25 };
    expect(
      nextAction({ stage: 'advertise-keys', answered: 3, expected: 10 }, idle, {
        now: 10_000,
        deadline: 10_000,
        opened: 0,
      }),
    ).toEqual({ kind: 'keep-open', deadline: 20_000 });
    expect(
      nextAction({ stage: 'advertise-keys', answered: 3, expected: 10 }, idle, {
        now: 20_000,
        deadline: 20_000,
        opened: 0,
      }),
    ).toEqual({ kind: 'keep-open', deadline: 25_000 });
    expect(
      nextAction({ stage: 'advertise-keys', answered: 0, expected: 10 }, idle, {
        now: 25_000,
        deadline: 25_000,
        opened: 0,
      }),
    ).toEqual({ kind: 'expire' });
    // Enough devices came: the round starts however long check-in took.
    expect(
      nextAction({ stage: 'advertise-keys', answered: 4, expected: 10 }, idle, {
        now: 90_000,
        deadline: 90_000,
        opened: 0,
      }),
    ).toEqual({ kind: 'close' });
  });

  it("waits up to MAX_STAGE_FACTOR × stageSeconds for a stage's first answer (devices work before answering), then closes", () => {
    const patience = MAX_STAGE_FACTOR * 10_000;
    expect(
      nextAction({ stage: 'masked-input', answered: 0, expected: 6 }, rules, {
        now: 10_000,
        deadline: 10_000,
        opened: 0,
      }),
    ).toEqual({ kind: 'keep-open', deadline: patience });
    expect(
      nextAction({ stage: 'masked-input', answered: 0, expected: 6 }, rules, {
        now: patience,
        deadline: patience,
        opened: 0,
      }),
    ).toEqual({ kind: 'close' });
    expect(
      nextAction({ stage: 'masked-input', answered: 1, expected: 6 }, rules, {
        now: 10_000,
        deadline: 10_000,
        opened: 0,
      }),
    ).toEqual({ kind: 'close' });
    expect(
      nextAction({ stage: 'share-keys', answered: 0, expected: 6 }, rules, {
        now: 10_000,
        deadline: 10_000,
        opened: 0,
      }),
    ).toEqual({ kind: 'keep-open', deadline: patience });
    expect(
      nextAction({ stage: 'unmask', answered: 0, expected: 6 }, rules, {
        now: patience,
        deadline: patience,
        opened: 0,
      }),
    ).toEqual({ kind: 'finish' });
  });

  it('finishes at unmask, but not before a pending publish retry is due (unless forced)', () => {
    expect(nextAction({ stage: 'unmask', answered: 4, expected: 4 }, rules, at(1_000))).toEqual({ kind: 'finish' });
    expect(nextAction({ stage: 'unmask', answered: 4, expected: 4 }, rules, at(1_000, { retryAt: 5_000 }))).toEqual({
      kind: 'wait',
    });
    expect(nextAction({ stage: 'unmask', answered: 4, expected: 4 }, rules, at(6_000, { retryAt: 5_000 }))).toEqual({
      kind: 'finish',
    });
    expect(
      nextAction({ stage: 'unmask', answered: 4, expected: 4 }, rules, at(1_000, { retryAt: 5_000, force: true })),
    ).toEqual({ kind: 'finish' });
  });

  it('an answer gives the stage stageSeconds more, capped at MAX_STAGE_FACTOR × stageSeconds after it opened', () => {
    expect(extendedDeadline({ now: 8_000, deadline: 10_000, opened: 0, stageSeconds: 10 })).toBe(18_000);
    expect(extendedDeadline({ now: 0, deadline: 10_000, opened: 0, stageSeconds: 10 })).toBeUndefined(); // already that late
    expect(extendedDeadline({ now: 59_000, deadline: 55_000, opened: 0, stageSeconds: 10 })).toBe(
      MAX_STAGE_FACTOR * 10_000,
    );
    expect(
      extendedDeadline({ now: 59_000, deadline: MAX_STAGE_FACTOR * 10_000, opened: 0, stageSeconds: 10 }),
    ).toBeUndefined();
  });
});
