/**
 * Whether a round's model may be served (TaskSettings.gate): the operator's evaluation on held-out examples decides,
 * against a floor (`minAccuracy`) and a ceiling on the drop from the best round served so far (`maxDrop`). A round
 * one device poisoned past either is recorded and not served. Pure.
 */
import type { PublicationGate, RoundRecord } from './task-protocol.ts';

/** Why a round evaluated at `accuracy` fails `gate` given the rounds before, or undefined when it passes. */
export function gateProblem(gate: PublicationGate, accuracy: number, history: RoundRecord[]): string | undefined {
  if (gate.minAccuracy !== undefined && accuracy < gate.minAccuracy)
    return `accuracy ${accuracy} is below the gate's floor ${gate.minAccuracy}`;
  const served = history.filter((h) => h.gate === 'passed' && h.accuracy !== undefined).map((h) => h.accuracy!);
  if (gate.maxDrop !== undefined && served.length) {
    const best = Math.max(...served);
    if (best - accuracy > gate.maxDrop)
      return `accuracy ${accuracy} is more than ${gate.maxDrop} below the best round served (${best})`;
  }
  return undefined;
}
