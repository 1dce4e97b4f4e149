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
});
