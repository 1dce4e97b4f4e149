import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { DATATYPES, DATATYPE_INFO, type Datatype } from '../../../federated/oip/datatypes.ts';
import { toHalfBits } from '../../../federated/oip/half-float.ts';
import { encodeBytesElements } from '../../../federated/oip/bytes-elements.ts';
import { addModel, identityModel, matmulModel } from '../../fixtures/onnx-models.ts';
import { inferBinary, inferJson, readBinary, uniqueName, uploadOk } from '../helpers.ts';

const MATMUL = uniqueName('matmul');
const ADD = uniqueName('add');
const ID = (dt: Datatype) => `identity-${dt.toLowerCase()}`;

beforeAll(async () => {
  await uploadOk(MATMUL, '1', matmulModel());
  await uploadOk(ADD, '1', addModel());
  for (const dt of DATATYPES) await uploadOk(ID(dt), '1', identityModel(dt));
});

describe('model metadata', () => {
  it('lists models with versions and aliases', async () => {
    const { models } = (await (await SELF.fetch('http://edge/v2/models')).json()) as { models: { name: string }[] };
    expect(models).toContainEqual({ name: MATMUL, versions: ['1'], aliases: { latest: '1' } });
    expect(models.map((m) => m.name)).toContain('mnist-mlp');
  });

  it('gives inputs and outputs with -1 for dynamic dimensions, versioned and not', async () => {
    const want = {
      name: MATMUL,
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
    };
    expect(await (await SELF.fetch(`http://edge/v2/models/${MATMUL}`)).json()).toMatchObject(want);
    expect(await (await SELF.fetch(`http://edge/v2/models/${MATMUL}/versions/1`)).json()).toMatchObject(want);
  });

  it("names what each output index means where the model declares it (fedge.labels): which of spam-bow's two is spam", async () => {
    const spam = (await (await SELF.fetch('http://edge/v2/models/spam-bow')).json()) as {
      outputs: { name: string; labels?: string[] }[];
    };
    expect(spam.outputs).toEqual([expect.objectContaining({ name: 'probabilities', labels: ['ham', 'spam'] })]);
    const digits = (await (await SELF.fetch('http://edge/v2/models/mnist-mlp')).json()) as {
      outputs: { labels?: string[] }[];
    };
    expect(digits.outputs[0]!.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // A model that declares nothing gets no labels.
    expect(
      ((await (await SELF.fetch(`http://edge/v2/models/${MATMUL}`)).json()) as { outputs: { labels?: string[] }[] })
        .outputs[0]!.labels,
    ).toBeUndefined();
  });

  it('answers ready for a known version and 404 for unknown ones', async () => {
    expect((await SELF.fetch(`http://edge/v2/models/${MATMUL}/ready`)).status).toBe(200);
    expect((await SELF.fetch(`http://edge/v2/models/${MATMUL}/versions/1/ready`)).status).toBe(200);
    const missing = await SELF.fetch(`http://edge/v2/models/${MATMUL}/versions/9/ready`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toMatch(/no version or alias '9'/);
    expect((await SELF.fetch('http://edge/v2/models/no-such-model/ready')).status).toBe(404);
  });
});

describe('inference with JSON tensors', () => {
  it('computes x·W for a dynamic batch, flat or nested data, and echoes the id and version', async () => {
    const flat = await inferJson(MATMUL, {
      id: 'req-1',
      inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 0, 0, 1, 1, 1] }],
    });
    expect(flat.status).toBe(200);
    expect(flat.headers.get('Fedge-Execution-Provider')).toBe('wasm');
    expect(await flat.json()).toEqual({
      model_name: MATMUL,
      model_version: '1',
      id: 'req-1',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 2], data: [1, 2, 9, 12] }],
    });
    const nested = await inferJson(`${MATMUL}/versions/1`, {
      inputs: [
        {
          name: 'x',
          shape: [2, 3],
          datatype: 'FP32',
          data: [
            [1, 0, 0],
            [1, 1, 1],
          ],
        },
      ],
    });
    expect(((await nested.json()) as any).outputs[0].data).toEqual([1, 2, 9, 12]);
  });

  it('returns only the requested outputs', async () => {
    const a = [1, 2, 3, 4],
      b = [10, 20, 30, 40];
    const inputs = [
      { name: 'a', shape: [1, 4], datatype: 'FP32', data: a },
      { name: 'b', shape: [1, 4], datatype: 'FP32', data: b },
    ];
    const all = (await (await inferJson(ADD, { inputs })).json()) as any;
    expect(all.outputs.map((o: any) => o.name)).toEqual(['sum', 'double']);
    const one = (await (await inferJson(ADD, { inputs, outputs: [{ name: 'double' }] })).json()) as any;
    expect(one.outputs).toEqual([{ name: 'double', datatype: 'FP32', shape: [1, 4], data: [2, 4, 6, 8] }]);
  });

  it.each(DATATYPES)('round-trips %s through JSON', async (dt) => {
    const data =
      dt === 'BYTES'
        ? ['spam', 'héllo wörld ✓', '']
        : dt === 'BOOL'
          ? [true, false, true]
          : dt === 'FP16'
            ? [0.5, -2, 1024]
            : dt.startsWith('U')
              ? [0, 7, 200]
              : [-3, 0, 100];
    const res = await inferJson(ID(dt), { inputs: [{ name: 'x', shape: [1, 3], datatype: dt, data }] });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).outputs[0]).toEqual({ name: 'y', datatype: dt, shape: [1, 3], data });
  });

  it('keeps 64-bit integers beyond 2^53 exact as decimal strings', async () => {
    const big = '9007199254740993';
    const res = await inferJson(ID('INT64'), {
      inputs: [{ name: 'x', shape: [1, 3], datatype: 'INT64', data: [big, -1, 5] }],
    });
    expect(((await res.json()) as any).outputs[0].data).toEqual([big, -1, 5]);
  });
});

function sample(dt: Datatype): ArrayBufferView {
  if (dt === 'BYTES') return encodeBytesElements(['a', '', 'ünïcode', 'x'.repeat(300), 'tab\there', 'z']);
  const info = DATATYPE_INFO[dt];
  switch (info.kind) {
    case 'bool':
      return new Uint8Array([1, 0, 1, 1, 0, 0]);
    case 'bigint':
      return dt === 'INT64'
        ? new BigInt64Array([-(2n ** 62n), 1n, 2n, 3n, 4n, 2n ** 62n])
        : new BigUint64Array([0n, 1n, 2n, 3n, 4n, 2n ** 63n]);
    case 'half':
      return new Uint16Array([0.5, -1.25, 3, 65504, -0, 0.0001].map(toHalfBits));
    default:
      return new (info.array as any)([1, 2, 3, 4, 5, dt.startsWith('U') ? 250 : -6]);
  }
}

describe('binary tensor data extension', () => {
  it.each(DATATYPES)('sends and receives %s as raw little-endian bytes', async (dt) => {
    const data = sample(dt);
    const res = await inferBinary(
      ID(dt),
      {
        inputs: [{ name: 'x', shape: [2, 3], datatype: dt, parameters: { binary_data_size: data.byteLength } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      },
      [data],
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('application/octet-stream');
    const { header, payload } = await readBinary(res);
    expect(header.outputs).toEqual([
      { name: 'y', datatype: dt, shape: [2, 3], parameters: { binary_data_size: data.byteLength } },
    ]);
    expect(payload).toEqual(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  });

  it('mixes a binary input with a JSON input, and binary_data_output makes every output binary', async () => {
    const a = new Float32Array([1, 2, 3, 4]);
    const res = await inferBinary(
      ADD,
      {
        parameters: { binary_data_output: true },
        inputs: [
          { name: 'a', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
          { name: 'b', shape: [1, 4], datatype: 'FP32', data: [1, 1, 1, 1] },
        ],
      },
      [a],
    );
    const { header, payload } = await readBinary(res);
    expect(header.outputs.map((o: any) => o.parameters.binary_data_size)).toEqual([16, 16]);
    expect(Array.from(new Float32Array(payload.buffer))).toEqual([2, 3, 4, 5, 2, 4, 6, 8]);
  });

  it('answers a binary request in JSON when no output asks for binary', async () => {
    const x = new Float32Array([1, 1, 1]);
    const res = await inferBinary(
      MATMUL,
      { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }] },
      [x],
    );
    expect(res.headers.get('Content-Type')).toMatch(/json/);
    expect(((await res.json()) as any).outputs[0].data).toEqual([9, 12]);
  });
});

describe('concurrency', () => {
  it('serves many concurrent requests on one session without mixing their results', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await inferJson(MATMUL, {
          inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [i, 0, 0] }],
        });
        return ((await res.json()) as any).outputs[0].data;
      }),
    );
    results.forEach((data, i) => expect(data).toEqual([i, 2 * i]));
  });
});
