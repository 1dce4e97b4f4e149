/** Every refused request gets a 4xx JSON error that says what is wrong, and changes nothing stored. */
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  addModel,
  constantOfShapeModel,
  expandModel,
  identityModel,
  matmulModel,
  reshapeModel,
  tileModel,
} from '../../fixtures/onnx-models.ts';
import { inferBinary, inferJson, uniqueName, uploadOk } from '../helpers.ts';

const MATMUL = uniqueName('bad-matmul');
const ADD = uniqueName('bad-add');
const FP16 = uniqueName('bad-fp16');
const x = (over: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3], ...over }],
});

beforeAll(async () => {
  await uploadOk(MATMUL, '1', matmulModel());
  await uploadOk(ADD, '1', addModel());
  await uploadOk(FP16, '1', identityModel('FP16'));
});

async function expectError(res: Response | Promise<Response>, status: number, pattern: RegExp) {
  const r = await res;
  const body = (await r.json()) as { error?: string };
  expect({ status: r.status, error: body.error }).toMatchObject({ status, error: expect.stringMatching(pattern) });
  expect(r.headers.get('Content-Type')).toMatch(/application\/json/);
}

describe('malformed inference requests → 400', () => {
  it.each([
    ['malformed JSON', '{"inputs": [', /not valid JSON/],
    ['no inputs', { inputs: [] }, /at least one tensor/],
    ['inputs not an array', { inputs: 'x' }, /inputs/],
    ['missing shape', { inputs: [{ name: 'x', datatype: 'FP32', data: [1, 2, 3] }] }, /inputs\[0\]\.shape/],
    ['negative dimension', x({ shape: [1, -3] }), /must not be negative/],
    ['fractional dimension', x({ shape: [1, 2.5] }), /integers/],
    ['huge dimensions', x({ shape: [200000, 3] }), /more elements than the 300000 allowed/],
    ['wrong rank', x({ shape: [3] }), /does not fit the model's \[-1,3\]/],
    ['wrong fixed dimension', x({ shape: [1, 4], data: [1, 2, 3, 4] }), /does not fit/],
    ['element count mismatch', x({ shape: [2, 3] }), /needs 6 elements, data has 3/],
    ['wrong datatype', x({ datatype: 'FP64' }), /datatype FP64 does not match the model's FP32/],
    ['unknown datatype', x({ datatype: 'FLOAT' }), /unknown datatype "FLOAT"/],
    ['non-numeric data', x({ data: [1, 'two', 3] }), /element 1: expected a finite number, got "two"/],
    ['NaN as a string', x({ data: [1, 'NaN', 3] }), /expected a finite number/],
    ['null element', x({ data: [1, null, 3] }), /expected a finite number, got null/],
    ['no data at all', x({ data: undefined }), /no data/],
    ['unknown input name', x({ name: 'z' }), /unknown input 'z'; the model takes 'x'/],
    ['duplicate input', { inputs: [x().inputs[0], x().inputs[0]] }, /given twice/],
  ])('%s', async (_, body, pattern) => expectError(inferJson(MATMUL, body), 400, pattern));

  it('missing input', async () => {
    await expectError(
      inferJson(ADD, { inputs: [{ name: 'a', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
      400,
      /missing input 'b'/,
    );
  });

  it('unknown requested output', async () => {
    await expectError(inferJson(MATMUL, { ...x(), outputs: [{ name: 'nope' }] }), 400, /unknown output 'nope'/);
  });

  it('integer out of range for its type', async () => {
    const id = uniqueName('bad-int8');
    await uploadOk(id, '1', identityModel('INT8'));
    await expectError(
      inferJson(id, { inputs: [{ name: 'x', shape: [1, 3], datatype: 'INT8', data: [1, 300, 3] }] }),
      400,
      /300 is out of range for INT8/,
    );
  });
});

describe('binary bodies → 400', () => {
  const header = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] };
  it('truncated binary part', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2])]), 400, /ends after 8 of 12 bytes/);
  });
  it('extra bytes after the declared tensors', async () => {
    await expectError(
      inferBinary(MATMUL, header, [new Float32Array([1, 2, 3, 4])]),
      400,
      /binary part has 16 bytes but .* add up to 12/,
    );
  });
  it('binary_data_size that does not match shape × element size', async () => {
    const h = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 8 } }] };
    await expectError(
      inferBinary(MATMUL, h, [new Float32Array([1, 2])]),
      400,
      /binary_data_size is 8 but 3 FP32 elements need 12 bytes/,
    );
  });
  it('Inference-Header-Content-Length larger than the body', async () => {
    await expectError(
      inferBinary(MATMUL, header, [new Float32Array([1, 2, 3])], '100000'),
      400,
      /is 100000 but the body has/,
    );
  });
  it('Inference-Header-Content-Length that is not a number', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2, 3])], 'abc'), 400, /must be a byte count/);
  });
  it('Inference-Header-Content-Length that cuts the JSON header', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2, 3])], '20'), 400, /not valid JSON/);
  });
  it('NaN in binary FP32 data', async () => {
    await expectError(
      inferBinary(MATMUL, header, [new Float32Array([1, NaN, 3])]),
      400,
      /element 1: NaN is not a finite number/,
    );
  });
  it('infinity in binary FP16 data', async () => {
    const h = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP16', parameters: { binary_data_size: 6 } }] };
    await expectError(inferBinary(FP16, h, [new Uint16Array([0x3c00, 0x7c00, 0])]), 400, /element 1: Infinity/);
  });
});

describe('transport limits and routing', () => {
  it('body over the size limit → 413', async () => {
    const data = new Array(300_000).fill(0.123456789);
    await expectError(
      inferJson(MATMUL, { inputs: [{ name: 'x', shape: [100000, 3], datatype: 'FP32', data }] }),
      413,
      /larger than the 1048576 bytes allowed/,
    );
  });
  it('wrong content type → 415', async () => {
    await expectError(inferJson(MATMUL, x(), { 'Content-Type': 'text/plain' }), 415, /text\/plain is not accepted/);
  });
  it('unknown model → 404, unknown version → 404', async () => {
    await expectError(inferJson('no-such-model', x()), 404, /unknown model 'no-such-model'/);
    await expectError(inferJson(`${MATMUL}/versions/7`, x()), 404, /no version or alias '7'/);
  });
  it('unknown route → 404 JSON', async () => {
    await expectError(SELF.fetch('http://edge/v3/nothing'), 404, /no route for GET \/v3\/nothing/);
  });
  it('the isolate still serves after all of the above', async () => {
    const res = await inferJson(MATMUL, x());
    expect(res.status).toBe(200);
  });
});

describe('nesting that does not match the shape → 400, at any depth', () => {
  const nest = (depth: number, leaf: unknown = 1) => {
    let v: unknown = leaf;
    for (let i = 0; i < depth; i++) v = [v];
    return v;
  };
  it('data nested 10⁵ deep (was a stack overflow → 500)', async () => {
    await expectError(inferJson(MATMUL, x({ data: nest(100_000) })), 400, /nested deeper than 64 levels/);
  });
  it('any field nested 10⁵ deep, not only data', async () => {
    await expectError(
      inferJson(MATMUL, { ...x(), parameters: { deep: nest(100_000) } }),
      400,
      /nested deeper than 64 levels/,
    );
    await expectError(inferJson(MATMUL, { inputs: [{ ...x().inputs[0], name: nest(100_000) }] }), 400, /nested deeper/);
  });
  it('nesting deeper than the shape but within the JSON bound', async () => {
    await expectError(
      inferJson(MATMUL, x({ data: [[nest(50), 2, 3]] })),
      400,
      /data\[0\]\[0\] is an array, but the shape has only 2 dimensions/,
    );
  });
  it('a deep value as an element is described, not stringified', async () => {
    await expectError(inferJson(MATMUL, x({ data: [1, nest(40), 3] })), 400, /rectangular array of shape \[1,3\]/);
    await expectError(
      inferJson(MATMUL, x({ data: [1, { a: nest(40) }, 3] })),
      400,
      /element 1: expected a finite number, got an object/,
    );
  });
  it.each([
    [
      'ragged rows with the right total',
      [
        [1, 0],
        [0, 1, 1, 1],
      ],
      /data\[0\] has 2 entries, dimension 1 is 3/,
    ],
    ['ragged in the last row', [[1, 0, 0], [1, 1], [1]], /data has 3 entries, dimension 0 is 2/],
    ['a scalar where a row belongs', [[1, 0, 0], 1], /data\[1\] is 1, expected an array of 3/],
    ['one level too few', [[1, 0, 0, 1, 1, 1]], /data has 1 entries, dimension 0 is 2/],
    [
      'one level too many',
      [
        [[1], [0], [0]],
        [[1], [1], [1]],
      ],
      /data\[0\]\[0\] is an array, but the shape has only 2 dimensions/,
    ],
  ])('%s', async (_, data, pattern) => {
    await expectError(inferJson(MATMUL, x({ shape: [2, 3], data })), 400, pattern);
  });
  it('flat and exactly nested data are still accepted', async () => {
    for (const data of [
      [1, 0, 0, 1, 1, 1],
      [
        [1, 0, 0],
        [1, 1, 1],
      ],
    ]) {
      const res = await inferJson(MATMUL, x({ shape: [2, 3], data }));
      expect(((await res.json()) as any).outputs[0].data).toEqual([1, 2, 9, 12]);
    }
  });
});

describe('errors quote at most a few dozen characters of the input', () => {
  const huge = 'n'.repeat(500_000);
  const short = async (res: Promise<Response>, status: number, pattern: RegExp) => {
    const r = await res;
    const { error } = (await r.json()) as { error: string };
    expect(r.status).toBe(status);
    expect(error).toMatch(pattern);
    expect(error.length).toBeLessThan(400);
  };
  it.each([
    ['an input name', x({ name: huge }), /unknown input 'n{64}…'/],
    ['a datatype', x({ datatype: huge }), /unknown datatype "n{64}…"/],
    ['an element', x({ data: [1, huge, 3] }), /got "n{64}…"/],
    ['an output name', { ...x(), outputs: [{ name: huge }] }, /unknown output 'n{64}…'/],
    [
      'a shape of many dimensions',
      x({ shape: new Array(50_000).fill(1) }),
      /shape \[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,… \(50000 dimensions\)\] does not fit/,
    ],
    [
      'a parameters key',
      { ...x(), parameters: { binary_data_output: 1, [huge]: 1 } },
      /parameters\.binary_data_output/,
    ],
  ])('%s', (_, body, pattern) => short(inferJson(MATMUL, body), 400, pattern));
  it('a model name or version in the URL', async () => {
    await short(inferJson('m'.repeat(8000), x()), 404, /unknown model 'm{64}…'/);
    await short(inferJson(`${MATMUL}/versions/${'v'.repeat(8000)}`, x()), 404, /no version or alias 'v{64}…'/);
  });
  it('invalid JSON with a long token', async () => {
    await short(inferJson(MATMUL, `{"inputs": ${huge}`), 400, /not valid JSON/);
  });
});

describe("values beyond the datatype's range → 400, after conversion", () => {
  const F32 = uniqueName('bad-fp32');
  const F64 = uniqueName('bad-fp64');
  beforeAll(async () => {
    await uploadOk(F32, '1', identityModel('FP32'));
    await uploadOk(F64, '1', identityModel('FP64'));
  });
  const one = (datatype: string, data: unknown[]) => ({ inputs: [{ name: 'x', shape: [1, 3], datatype, data }] });
  it.each([
    ['FP32 1e39', 'FP32', [1, 1e39, 3], /element 1: 1e\+39 is out of range for FP32/],
    ['FP32 -1e39', 'FP32', [-1e39, 0, 0], /element 0: -1e\+39 is out of range for FP32/],
    [
      'FP16 65520',
      'FP16',
      [0, 0, 65520],
      /element 2: 65520 is out of range for FP16 \(largest finite magnitude 65504\)/,
    ],
    ['FP16 -1e6', 'FP16', [-1e6, 0, 0], /out of range for FP16/],
  ])('%s', async (_, dt, data, pattern) => {
    await expectError(inferJson(dt === 'FP16' ? FP16 : F32, one(dt, data)), 400, pattern);
  });
  it('FP64 beyond its range (JSON 1e309 parses to Infinity)', async () => {
    await expectError(
      inferJson(F64, '{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[1,1e309,3]}]}'),
      400,
      /element 1: expected a finite number, got Infinity/,
    );
  });
  it('the largest finite values still pass', async () => {
    const f16 = await inferJson(FP16, one('FP16', [65504, -65504, 65519]));
    expect(((await f16.json()) as any).outputs[0].data).toEqual([65504, -65504, 65504]);
    const f32 = await inferJson(F32, one('FP32', [3.4028234663852886e38, -3.4e38, 1e-46]));
    expect(((await f32.json()) as any).outputs[0].data).toEqual([3.4028234663852886e38, Math.fround(-3.4e38), 0]);
  });
  it('binary FP32 infinity bits', async () => {
    const h = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] };
    await expectError(
      inferBinary(F32, h, [new Float32Array([1, -Infinity, 3])]),
      400,
      /element 1: -Infinity is not a finite number/,
    );
  });
});

describe("a model that fails at run time → 400 with ORT's reason, never a 5xx", () => {
  const RESHAPE = uniqueName('run-reshape');
  const EXPAND = uniqueName('run-expand');
  const TILE = uniqueName('run-tile');
  const SHAPE = uniqueName('run-cos');
  beforeAll(async () => {
    // Each runs on the upload probe's batch of 1 and fails (or grows) on other inputs.
    await uploadOk(RESHAPE, '1', reshapeModel([1, 3]));
    await uploadOk(EXPAND, '1', expandModel([2, 3]));
    await uploadOk(TILE, '1', tileModel([1000, 1]));
    await uploadOk(SHAPE, '1', constantOfShapeModel());
  });
  const batch = (n: number) => x({ shape: [n, 3], data: new Array(n * 3).fill(1) });
  it('a Reshape that does not fit the input, every time', async () => {
    for (let i = 0; i < 3; i++)
      await expectError(
        inferJson(RESHAPE, batch(2)),
        400,
        /the model failed on this input: .*cannot be reshaped to the requested shape. Input shape:\{2,3\}, requested shape:\{1,3\}/,
      );
    expect((await inferJson(RESHAPE, batch(1))).status).toBe(200);
  });
  it('an Expand that does not broadcast', async () => {
    await expectError(inferJson(EXPAND, batch(3)), 400, /the model failed on this input: .*invalid expand shape/);
  });
  it('a ConstantOfShape asked for 10¹⁰ elements', async () => {
    const body = { inputs: [{ name: 'shape', shape: [2], datatype: 'INT64', data: [100_000, 100_000] }] };
    await expectError(
      inferJson(SHAPE, body),
      400,
      /the model failed on this input: INVALID_ARGUMENT: Tensor shape is too large/,
    );
  });
  it('outputs larger than a response may carry', async () => {
    await expectError(
      inferJson(TILE, batch(200)),
      400,
      /output 'y' has shape \[200000,3\]: the outputs add up to more than the 300000 elements/,
    );
  });
  it('messages carry no build paths', async () => {
    const { error } = (await (await inferJson(RESHAPE, batch(2))).json()) as { error: string };
    expect(error).not.toMatch(/\/mnt\/|\.cc:|\.h:\d|OrtRun/);
  });
  it('the isolate still serves every model afterwards', async () => {
    expect((await inferJson(MATMUL, x())).status).toBe(200);
    expect((await inferJson(TILE, batch(1))).status).toBe(200);
  });
});
