/**
 * Open dimensions and the shape check, as onnxruntime-node has them: a dim with neither dim_value nor dim_param
 * is -1 like a named one (ORT-web alone reads it as 4294967295), and an input is accepted exactly when
 * onnxruntime-node would run it — same rank and equal fixed dims, and no check at all for a rank-0 declaration.
 */
import { describe, expect, it } from 'vitest';
import { encodeModel, node, valueInfo } from '../../../federated/model/onnx-graph.ts';
import { oipDim } from '../../../functions/inference/model-loader.ts';
import { inferJson, upload, uniqueName } from '../helpers.ts';

/** y = Identity(x) with x: [<blank>, "batch", 3], and k2 = Identity(k) with k an INT64 declared as a scalar. */
function openDimsModel(): Uint8Array {
  const x = valueInfo('x', 1, ['batch', 3]);
  const y = valueInfo('y', 1, ['batch', 3]);
  // A dimension with neither dim_value nor dim_param, in front: what some exporters and hand edits write.
  x.type!.tensorType!.shape!.dim!.unshift({});
  y.type!.tensorType!.shape!.dim!.unshift({});
  return encodeModel({
    name: 'open-dims',
    node: [node('Identity', ['x'], ['y']), node('Identity', ['k'], ['k2'])],
    input: [x, valueInfo('k', 7, [])],
    output: [y, valueInfo('k2', 7, [])],
  });
}

const x = (shape: number[]) => ({
  name: 'x',
  datatype: 'FP32',
  shape,
  data: new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5),
});
const k = (shape: number[]) => ({
  name: 'k',
  datatype: 'INT64',
  shape,
  data: new Array(shape.reduce((a, b) => a * b, 1)).fill(7),
});

describe('open dimensions', () => {
  it('maps ORT-web dims to OIP: sizes kept, names, blanks and 32-bit-read negatives to -1', () => {
    expect([0, 1, 3, 2 ** 31 - 1].map(oipDim)).toEqual([0, 1, 3, 2 ** 31 - 1]);
    expect(['batch', '', 4294967295, 4294967294, -1, 2 ** 31].map(oipDim)).toEqual([-1, -1, -1, -1, -1, -1]);
  });

  it('reports a blank dim as -1 and runs any size in it', async () => {
    const name = uniqueName('open-dims');
    const up = await upload(name, '1', openDimsModel());
    expect(up.status, await up.clone().text()).toBe(201);
    const meta = (await up.json()) as { inputs: unknown; outputs: unknown };
    expect(meta.inputs).toEqual([
      { name: 'x', datatype: 'FP32', shape: [-1, -1, 3] },
      { name: 'k', datatype: 'INT64', shape: [] },
    ]);
    expect(meta.outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: [-1, -1, 3] },
      { name: 'k2', datatype: 'INT64', shape: [] },
    ]);
    const res = await inferJson(name, { inputs: [x([2, 4, 3]), k([])] });
    expect(res.status, await res.clone().text()).toBe(200);
    const out = ((await res.json()) as { outputs: { name: string; shape: number[] }[] }).outputs;
    expect(out.find((o) => o.name === 'y')!.shape).toEqual([2, 4, 3]);
  });

  it('accepts and refuses exactly as onnxruntime-node does', async () => {
    const name = uniqueName('open-dims');
    expect((await upload(name, '1', openDimsModel())).status).toBe(201);
    const status = async (inputs: unknown[]) => (await inferJson(name, { inputs })).status;
    // A rank-0 declaration is not checked by ORT: [1] (and any shape) runs, as onnxruntime-node runs it.
    expect(await status([x([1, 1, 3]), k([1])])).toBe(200);
    expect(await status([x([1, 1, 3]), k([2, 2])])).toBe(200);
    // Rank and fixed dims are: onnxruntime-node says "Invalid rank" / "Got invalid dimensions".
    expect(await status([x([1, 3]), k([])])).toBe(400);
    expect(await status([x([1, 1, 3, 1]), k([])])).toBe(400);
    expect(await status([x([1, 1, 4]), k([])])).toBe(400);
  });
});
