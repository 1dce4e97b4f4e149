/**
 * When a round's stage closes: the rule the FederatedTask applies on every message, relay and alarm, as pure code
 * beside the SecAgg+ server (secagg/server.ts) so it is tested in Node like the protocol. The task does the I/O
 * (storage, alarms, publishing); this says what to do next.
 *
 * A stage closes as soon as everyone it waits for has answered, or at its deadline. Check-in (advertise-keys) with
 * too few devices for the round to succeed is kept open instead of abandoned — nobody has spent anything yet. A
 * stage that keeps receiving answers is not cut off: each answer gives it stageSeconds more, up to MAX_STAGE_FACTOR ×
 * stageSeconds after it opened; devices that are slow but coming make the round, devices that are gone cost one
 * stageSeconds after the last answer. Check-in that stays short of devices for idleSeconds expires.
 */
import type { Stage } from '../secagg/messages.ts';

/** A stage that keeps receiving answers stays open at most this many stageSeconds. */
export const MAX_STAGE_FACTOR = 6;

/** What the stage has received, against what it waits for (the SecAgg+ server state's counts). */
export interface StageProgress {
  stage: Stage;
  /** advertise-keys: devices that checked in; share-keys: shares received of the roster; masked-input: inputs of
   * the devices that shared keys; unmask: unmask answers of the survivors. */
  answered: number;
  /** How many answers would close the stage at once (devicesPerRound at check-in). */
  expected: number;
}

export interface RoundRules {
  stageSeconds: number;
  /** Fewest devices a round may start with: max(minDevices, threshold + 1). */
  minStart: number;
  /** Check-in kept open this long without enough devices expires: the task pauses (nothing holds a round open for good). */
  idleSeconds?: number | undefined;
}

/** Fewest devices a round may start with: the task's minDevices, and never fewer than SecAgg+ can unmask (t + 1). */
export const roundMinimum = (s: { minDevices: number; secagg: { threshold: number } }): number =>
  Math.max(s.minDevices, s.secagg.threshold + 1);

export type RoundAction =
  /** Nothing to do yet. */
  | { kind: 'wait' }
  /** Check-in is due but too few devices came, or no masked input came yet: keep the stage open until `deadline`. */
  | { kind: 'keep-open'; deadline: number }
  /** Check-in has waited idleSeconds for enough devices: stop waiting (the task pauses; devices that came stay). */
  | { kind: 'expire' }
  /** Close the stage (the server moves to the next). */
  | { kind: 'close' }
  /** Unmask is over: reconstruct the sum and publish. */
  | { kind: 'finish' };

/** What to do with the current stage at `now` (`force`: an operator closes it now; `retryAt`: a publish to retry). */
export function nextAction(
  p: StageProgress,
  rules: RoundRules,
  t: { now: number; deadline: number; opened?: number | undefined; force?: boolean; retryAt?: number | undefined },
): RoundAction {
  const due = t.force === true || t.now >= t.deadline;
  if (p.answered < p.expected && !due) return { kind: 'wait' };
  if (p.stage === 'advertise-keys' && p.answered < rules.minStart) {
    const expires =
      rules.idleSeconds === undefined || t.opened === undefined ? undefined : t.opened + rules.idleSeconds * 1000;
    if (expires !== undefined && t.now >= expires) return { kind: 'expire' };
    const next = t.now + rules.stageSeconds * 1000;
    return { kind: 'keep-open', deadline: expires === undefined ? next : Math.min(next, expires) };
  }
  // Each later stage begins with work on every device before its first answer — verifying k neighbours and sealing
  // k shares (share-keys), k mask expansions of d words (masked-input) — which may take far longer than the gaps
  // between answers, above all when one machine simulates a whole round (1,000 devices over 2 cores). With no
  // answer yet, the stage waits up to MAX_STAGE_FACTOR × stageSeconds after it opened for the first.
  const patience = t.opened === undefined ? undefined : t.opened + MAX_STAGE_FACTOR * rules.stageSeconds * 1000;
  if (
    p.stage !== 'advertise-keys' &&
    p.answered === 0 &&
    p.expected > 0 &&
    t.force !== true &&
    patience !== undefined &&
    t.now < patience
  )
    return { kind: 'keep-open', deadline: patience };
  if (p.stage === 'unmask')
    return t.retryAt !== undefined && t.now < t.retryAt && !t.force ? { kind: 'wait' } : { kind: 'finish' };
  return { kind: 'close' };
}

/** The stage's deadline after an answer at `now`, or undefined when it does not move. */
export function extendedDeadline(t: {
  now: number;
  deadline: number;
  opened: number;
  stageSeconds: number;
}): number | undefined {
  const deadline = Math.min(
    Math.max(t.deadline, t.now + t.stageSeconds * 1000),
    t.opened + MAX_STAGE_FACTOR * t.stageSeconds * 1000,
  );
  return deadline > t.deadline ? deadline : undefined;
}
