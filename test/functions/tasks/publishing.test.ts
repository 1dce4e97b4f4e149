/**
 * Publishing is a decision (issue 31, point 4): a task publishes each round under its own alias, and moves `latest`
 * only on a model it created. A task whose `model` is a model already served leaves that model's `latest` — what
 * every default inference reads — where it was; promoting the task's version is an explicit alias move.
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { ADMIN, uniqueName, uploadOk } from '../helpers.ts';
import { identityModel } from '../../fixtures/onnx-models.ts';
import { post, taskBody, upToUnmask } from './fixtures.ts';

/** The model's aliases as GET /v2/models lists them. */
const modelAliases = async (model: string): Promise<Record<string, string>> => {
  const all = (await (await SELF.fetch('http://edge/v2/models')).json()) as {
    models: { name: string; aliases: Record<string, string> }[];
  };
  return all.models.find((m) => m.name === model)?.aliases ?? {};
};

async function publishOneRound(task: string, model: string) {
  const created = await post('/v1/tasks', taskBody(task, { model, rounds: 1 }));
  expect(created.status, await created.clone().text()).toBe(201);
  const { devices, unmasks } = await upToUnmask(task, 3);
  for (const [i, d] of devices.entries()) expect((await d.send(unmasks[i]!)).status).toBe(202);
}

describe('where a task publishes', () => {
  it('on a model it created: its alias and latest follow each round', async () => {
    const task = uniqueName('own');
    await publishOneRound(task, task);
    expect(await modelAliases(task)).toMatchObject({ federated: 'r1', latest: 'r1' });
  });

  it("on a model already served: only the task's alias moves; latest moves when the admin promotes the version", async () => {
    const model = uniqueName('served');
    await uploadOk(model, '1', identityModel('FP32'));
    await publishOneRound(uniqueName('onto'), model);
    expect(await modelAliases(model)).toMatchObject({ federated: 'r1', latest: '1' });
    const promoted = await SELF.fetch(`http://edge/v1/models/${model}/aliases/latest`, {
      method: 'PUT',
      headers: { ...ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ version: 'r1' }),
    });
    expect(promoted.status).toBe(200);
    expect(await modelAliases(model)).toMatchObject({ federated: 'r1', latest: 'r1' });
  });

  it('with a gate, a round is served only once its evaluation passes; one that fails is recorded and not served', async () => {
    const task = uniqueName('gated');
    const model = uniqueName('gated-model');
    await uploadOk(model, '1', identityModel('FP32'));
    const created = await post(
      '/v1/tasks',
      taskBody(task, { model, rounds: 2, gate: { minAccuracy: 0.5, maxDrop: 0.05, promote: 'latest' } }),
    );
    expect(created.status, await created.clone().text()).toBe(201);
    const runRound = async (round: number) => {
      const { devices, unmasks } = await upToUnmask(task, 3, round);
      for (const [i, d] of devices.entries()) expect((await d.send(unmasks[i]!)).status).toBe(202);
    };
    const evaluate = async (round: number, accuracy: number) =>
      (await post(`/v1/tasks/${task}/evaluations`, { round, accuracy })).json();
    const status = async () =>
      (await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as { history: Record<string, unknown>[] };
    await runRound(1);
    // Stored, not served: no alias moved yet.
    expect(await modelAliases(model)).toEqual({ latest: '1' });
    expect((await status()).history[0]).toMatchObject({ status: 'published', version: 'r1', gate: 'pending' });
    expect(await evaluate(1, 0.3)).toEqual({ ok: true, gate: 'failed', moved: false });
    expect((await status()).history[0]).toMatchObject({
      gate: 'failed',
      gateReason: expect.stringMatching(/below the gate's floor 0.5/),
    });
    expect(await modelAliases(model)).toEqual({ latest: '1' });
    // A later evaluation of a failed round can still pass it (the operator re-measured).
    expect(await evaluate(1, 0.8)).toEqual({ ok: true, gate: 'passed', moved: true });
    expect(await modelAliases(model)).toEqual({ latest: 'r1', federated: 'r1' });
    await runRound(2);
    expect(await evaluate(2, 0.7)).toEqual({ ok: true, gate: 'failed', moved: false });
    expect((await status()).history[1]).toMatchObject({
      gateReason: expect.stringMatching(/more than 0.05 below the best round served \(0.8\)/),
    });
    expect(await modelAliases(model)).toEqual({ latest: 'r1', federated: 'r1' });
  });
});
