/**
 * The operator's evaluation of a published round (POST …/evaluations): recorded, and with a publication gate
 * (TaskSettings.gate, federated/aggregation/publication-gate.ts) the decision whether the round is served — passed:
 * the task's alias and `gate.promote` move to its version (publish.ts serveRound); failed: recorded with why.
 */
import { gateProblem } from '../../federated/aggregation/publication-gate.ts';
import type { TaskSettings } from '../../federated/aggregation/task-protocol.ts';
import { serveRound } from './publish.ts';
import { type Refusal, refuse } from './task-answers.ts';
import type { TaskStore } from './task-store.ts';

export type EvaluationResult = { ok: true; gate?: 'passed' | 'failed'; moved: boolean };

export async function recordEvaluation(
  env: Env,
  store: TaskStore,
  s: TaskSettings,
  round: number,
  accuracy: number,
): Promise<EvaluationResult | Refusal> {
  const rec = store.record(round);
  if (!rec) return refuse(404, `no round ${round}`);
  if (rec.status !== 'published') return refuse(422, `round ${round} published no model`);
  if (!s.gate || rec.gate === 'passed') {
    store.setRecord({ ...rec, accuracy });
    return { ok: true, moved: false };
  }
  const why = gateProblem(s.gate, accuracy, store.history());
  // Aliases first, then the record: a failure leaves the round pending, to be evaluated again.
  if (!why) await serveRound(env, s, rec.version!);
  const { gateReason: _g, ...rest } = rec;
  store.setRecord({ ...rest, accuracy, gate: why ? 'failed' : 'passed', ...(why && { gateReason: why }) });
  return { ok: true, gate: why ? 'failed' : 'passed', moved: !why };
}
