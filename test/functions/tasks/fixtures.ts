/** What the task route tests share: a tiny spec and its weights, a valid create body, JSON posts and error checks. */
import { SELF } from 'cloudflare:test';
import { expect } from 'vitest';
import { MODEL_SPEC_FORMAT, type ModelSpec } from '../../../federated/model/model-spec.ts';
import { toBase64 } from '../../../federated/secagg/bytes.ts';
import { ADMIN } from '../helpers.ts';

/** 4 inputs → 3 classes: 15 parameters. */
export const tiny: ModelSpec = { format: MODEL_SPEC_FORMAT, name: 'tiny', inputShape: [4], layers: [{ type: 'dense', units: 3, activation: 'softmax' }], inputName: 'input', outputName: 'probabilities', labels: ['a', 'b', 'c'] };
export const D = 15;
export const weights = toBase64(new Uint8Array(new Float32Array(D).fill(0.1).buffer));
export const TOKEN = 'enroll-0123456789abcdef';

/** A create-task body that passes every check: 3 devices per round, k = 2, t = 2. */
export const taskBody = (task: string, over: Record<string, unknown> = {}) => ({ task, model: task, spec: tiny, weights, rounds: 2, devicesPerRound: 3, minDevices: 3, secagg: { neighbours: 2, threshold: 2 }, stageSeconds: 600, update: { clip: 1, maxExamples: 10 }, enrollmentToken: TOKEN, ...over });

export const post = (path: string, json: unknown, headers: Record<string, string> = ADMIN) =>
  SELF.fetch(`http://edge${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof json === 'string' ? json : JSON.stringify(json) });

export async function expectError(res: Response | Promise<Response>, status: number, pattern: RegExp) {
  const r = await res;
  const b = (await r.json()) as { error?: string };
  expect({ status: r.status, error: b.error }).toMatchObject({ status, error: expect.stringMatching(pattern) });
}
