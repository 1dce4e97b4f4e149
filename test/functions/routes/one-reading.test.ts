/**
 * One reading of a served model, in workerd (issue 31 point 6; federated/model/onnx-canonical.ts): an upload that
 * onnxruntime and Fedge could read as two models is refused (400) and writes nothing; another is stored canonical,
 * its sha256 the stored bytes'; and task creation over a stored model answers 4xx whatever the bytes hold — also for
 * a version stored before uploads were canonical (written here straight to R2 and the catalog).
 */
import { SELF, env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../federated/model/digest.ts';
import { decodeModel } from '../../../federated/model/onnx-graph.ts';
import { onnx } from '../../../federated/model/onnx-protobuf.ts';
import { putBlob } from '../../../functions/registry/blob-store.ts';
import {
  HOSTILE_HEADS,
  headGraph,
  headModel,
  hiddenGraphModel,
  withLengthDelimited,
} from '../../federated/model/crafted-onnx.ts';
import { taskBody, post } from '../tasks/fixtures.ts';
import { inferJson, upload, uniqueName } from '../helpers.ts';

const probabilities = async (model: string) => {
  const res = await inferJson(model, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
};

/** A version as one stored before uploads were canonical: the bytes in R2, the record in the catalog, no check. */
async function storedAsIs(model: string, bytes: Uint8Array): Promise<void> {
  const sha256 = await sha256Hex(bytes);
  await putBlob(env.MODEL_BLOBS, sha256, bytes);
  const meta = (name: string, shape: number[]) => [{ name, datatype: 'FP32' as const, shape }];
  const result = await env.MODEL_CATALOG.getByName('global').putVersion({
    model,
    version: '1',
    sha256,
    bytes: bytes.byteLength,
    inputs: meta('x', [-1, 4]),
    outputs: meta('probabilities', [-1, 3]),
  });
  expect(result.status).toBe('created');
}

const createOn = (model: string) => {
  const task = uniqueName('one-reading-task');
  return post('/v1/tasks', taskBody(task, { spec: undefined, weights: undefined, base: { model, version: '1' } }));
};

async function answer(res: Response): Promise<{ status: number; error: string }> {
  return { status: res.status, error: ((await res.json()) as { error?: string }).error ?? '' };
}

describe('uploads are stored canonical', () => {
  it("the issue's crafted file (field 1 with wire type 2 hiding a second graph) is refused, and nothing is stored", async () => {
    const name = uniqueName('hidden-graph');
    expect(await answer(await upload(name, '1', hiddenGraphModel().bytes))).toEqual({
      status: 400,
      error: expect.stringMatching(/^not a loadable ONNX model: ModelProto\.irVersion: wire type 2, expected 0/),
    });
    expect((await SELF.fetch(`http://edge/v2/models/${name}`)).status).toBe(404);
  });

  it('a second graph in an unknown field or a second graph field is refused, naming it', async () => {
    const graph = onnx.GraphProto.encode(headGraph(5, 9)).finish();
    for (const [no, why] of [
      [99, /ModelProto: field 99 \(wire type 2\) is not in ONNX's schema/],
      [7, /ModelProto\.graph appears twice/],
    ] as const) {
      const res = await answer(
        await upload(uniqueName('second-graph'), '1', withLengthDelimited(headModel(), no, graph)),
      );
      expect(res).toEqual({ status: 400, error: expect.stringMatching(why) });
    }
  });

  it('a file out of field order is stored re-encoded: sha256 of the stored bytes, served as before', async () => {
    const canonical = headModel(0.3, 1);
    const m = decodeModel(canonical);
    const rest = onnx.ModelProto.encode({ ...m, irVersion: undefined }).finish();
    const shuffled = Uint8Array.from([...rest, 0x08, 0x80 | Number(m.irVersion), 0x80, 0x00]);
    const [a, b] = [uniqueName('shuffled'), uniqueName('canonical')];
    const stored = (await (await upload(a, '1', shuffled)).json()) as { sha256: string; bytes: number };
    expect(stored).toMatchObject({ sha256: await sha256Hex(canonical), bytes: canonical.byteLength });
    expect(stored.sha256).not.toBe(await sha256Hex(shuffled));
    expect((await upload(b, '1', canonical)).status).toBe(201);
    expect(await probabilities(a)).toEqual(await probabilities(b));
    // The same upload again is the same version (the canonical bytes compared), not a conflict.
    expect((await upload(a, '1', shuffled)).status).toBe(200);
  });
});

describe('task creation over a stored model answers 4xx, whatever its bytes', () => {
  it('on a clean upload of the head model: 201', async () => {
    const name = uniqueName('head');
    expect((await upload(name, '1', headModel())).status).toBe(201);
    const res = await createOn(name);
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it.each(HOSTILE_HEADS)('%s: refused at upload (400), or at task creation (422)', async (_, bytes) => {
    const name = uniqueName('hostile');
    const up = await answer(await upload(name, '1', bytes));
    if (up.status === 400) return;
    expect(up.status).toBe(201);
    expect(await answer(await createOn(name))).toEqual({ status: 422, error: expect.stringMatching(/^base /) });
  });

  it.each([
    ['the crafted file', hiddenGraphModel().bytes],
    ['a second graph in an unknown field', withLengthDelimited(headModel(), 99, headModel())],
    ...HOSTILE_HEADS,
  ])('stored before uploads were canonical, %s: 422 naming the base', async (_, bytes) => {
    const name = uniqueName('legacy');
    await storedAsIs(name, bytes);
    expect(await answer(await createOn(name))).toEqual({
      status: 422,
      error: expect.stringMatching(new RegExp(`^base ${name}@1: `)),
    });
  });
});
