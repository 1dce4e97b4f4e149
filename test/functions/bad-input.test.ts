/** Every refused request gets a 4xx JSON error that says what is wrong, and changes nothing stored. */
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { addModel, identityModel, matmulModel } from '../fixtures/onnx-models.ts';
import { inferBinary, inferJson, uniqueName, uploadOk } from './helpers.ts';

const MATMUL = uniqueName('bad-matmul');
const ADD = uniqueName('bad-add');
const FP16 = uniqueName('bad-fp16');
const x = (over: Record<string, unknown> = {}) => ({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3], ...over }] });

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
    await expectError(inferJson(ADD, { inputs: [{ name: 'a', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }), 400, /missing input 'b'/);
  });

  it('unknown requested output', async () => {
    await expectError(inferJson(MATMUL, { ...x(), outputs: [{ name: 'nope' }] }), 400, /unknown output 'nope'/);
  });

  it('integer out of range for its type', async () => {
    const id = uniqueName('bad-int8');
    await uploadOk(id, '1', identityModel('INT8'));
    await expectError(inferJson(id, { inputs: [{ name: 'x', shape: [1, 3], datatype: 'INT8', data: [1, 300, 3] }] }), 400, /300 is out of range for INT8/);
  });
});

describe('binary bodies → 400', () => {
  const header = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] };
  it('truncated binary part', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2])]), 400, /ends after 8 of 12 bytes/);
  });
  it('extra bytes after the declared tensors', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2, 3, 4])]), 400, /binary part has 16 bytes but .* add up to 12/);
  });
  it('binary_data_size that does not match shape × element size', async () => {
    const h = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 8 } }] };
    await expectError(inferBinary(MATMUL, h, [new Float32Array([1, 2])]), 400, /binary_data_size is 8 but 3 FP32 elements need 12 bytes/);
  });
  it('Inference-Header-Content-Length larger than the body', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2, 3])], '100000'), 400, /is 100000 but the body has/);
  });
  it('Inference-Header-Content-Length that is not a number', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2, 3])], 'abc'), 400, /must be a byte count/);
  });
  it('Inference-Header-Content-Length that cuts the JSON header', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, 2, 3])], '20'), 400, /not valid JSON/);
  });
  it('NaN in binary FP32 data', async () => {
    await expectError(inferBinary(MATMUL, header, [new Float32Array([1, NaN, 3])]), 400, /element 1: NaN is not a finite number/);
  });
  it('infinity in binary FP16 data', async () => {
    const h = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP16', parameters: { binary_data_size: 6 } }] };
    await expectError(inferBinary(FP16, h, [new Uint16Array([0x3c00, 0x7c00, 0])]), 400, /element 1: Infinity/);
  });
});

describe('transport limits and routing', () => {
  it('body over the size limit → 413', async () => {
    const data = new Array(300_000).fill(0.123456789);
    await expectError(inferJson(MATMUL, { inputs: [{ name: 'x', shape: [100000, 3], datatype: 'FP32', data }] }), 413, /larger than the 1048576 bytes allowed/);
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
