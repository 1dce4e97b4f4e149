/**
 * Text in, for text models: spam-bow declares its featurizer in its ONNX metadata, so it takes raw text as a BYTES
 * tensor and the edge featurizes it with the very code devices train with (hashText) — the answer equals sending
 * the hashed vector. Declarations that do not fit the model are refused at upload, with nothing stored.
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { hashTexts } from '../../../federated/model/text-features.ts';
import { encodeBytesElements } from '../../../federated/oip/bytes-elements.ts';
import { featurizersProp } from '../../../federated/model/featurizers.ts';
import { ElemType, encodeModel, node, valueInfo } from '../../../federated/model/onnx-graph.ts';
import { identityModel } from '../../fixtures/onnx-models.ts';
import { ADMIN, inferBinary, inferJson, readBinary, upload, uniqueName } from '../helpers.ts';

const FEATURES = { kind: 'hashedBagOfWords', buckets: 4096, ngrams: 2, maxChars: 20000 } as const;
const MAILS = [
  'Congratulations! You WON $1,000,000 — click here now!!!',
  'Hi team, the meeting notes from Tuesday are attached.',
];

async function spamBow(): Promise<{ input: string; features: typeof FEATURES; output: string }> {
  const meta = (await (await SELF.fetch('http://edge/v2/models/spam-bow')).json()) as any;
  return { input: meta.inputs[0].name, features: meta.inputs[0].featurizer, output: meta.outputs[0].name };
}

describe('text models take raw text', () => {
  it("reports the featurizer in the metadata, next to the graph's own FP32 input", async () => {
    const meta = (await (await SELF.fetch('http://edge/v2/models/spam-bow')).json()) as any;
    expect(meta.inputs[0]).toMatchObject({ datatype: 'FP32', shape: [-1, 4096], featurizer: FEATURES });
  });

  it('answers text exactly as it answers the hashed vector of the same text', async () => {
    const { input, features, output } = await spamBow();
    const text = await inferJson('spam-bow', { inputs: [{ name: input, shape: [2], datatype: 'BYTES', data: MAILS }] });
    expect(text.status).toBe(200);
    const vector = await inferJson('spam-bow', {
      inputs: [
        { name: input, shape: [2, features.buckets], datatype: 'FP32', data: Array.from(hashTexts(MAILS, features)) },
      ],
    });
    const [a, b] = [(await text.json()) as any, (await vector.json()) as any];
    expect(a.outputs[0].name).toBe(output);
    expect(a.outputs[0].shape).toEqual([2, 2]);
    expect(a.outputs[0].data).toEqual(b.outputs[0].data);
    const [spam, ham] = [a.outputs[0].data.slice(0, 2), a.outputs[0].data.slice(2)];
    expect(spam[1]).toBeGreaterThan(spam[0]); // labels [ham, spam]: the lottery mail is spam,
    expect(ham[0]).toBeGreaterThan(ham[1]); // the meeting notes are not
  });

  it('takes text in the binary extension, each element length-prefixed', async () => {
    const { input } = await spamBow();
    const framed = encodeBytesElements(MAILS);
    const res = await inferBinary(
      'spam-bow',
      {
        inputs: [{ name: input, shape: [2], datatype: 'BYTES', parameters: { binary_data_size: framed.byteLength } }],
        parameters: { binary_data_output: true },
      },
      [framed],
    );
    expect(res.status).toBe(200);
    const { header, payload } = await readBinary(res);
    expect(header.outputs[0].shape).toEqual([2, 2]);
    expect(payload.byteLength).toBe(16);
  });

  it('refuses text of the wrong shape, non-strings, and BYTES for a model without a featurizer', async () => {
    const { input } = await spamBow();
    const cases: [unknown, RegExp][] = [
      [{ name: input, shape: [1, 1], datatype: 'BYTES', data: ['a'] }, /shape \[1,1\] does not fit the model's \[-1\]/],
      [{ name: input, shape: [1], datatype: 'BYTES', data: [3] }, /element 0: expected a string/],
      [
        { name: input, shape: [1], datatype: 'INT32', data: [3] },
        /datatype INT32 does not match the model's FP32 \(or BYTES: raw text, hashedBagOfWords\)/,
      ],
    ];
    for (const [inp, message] of cases) {
      const res = await inferJson('spam-bow', { inputs: [inp] });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
    }
    const mlp = await inferJson('mnist-mlp', {
      inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: ['seven'] }],
    });
    expect(mlp.status).toBe(400);
    expect(((await mlp.json()) as { error: string }).error).toMatch(/datatype BYTES does not match the model's FP32$/);
  });

  it("counts the featurized floats against the request's element limit", async () => {
    const { input } = await spamBow();
    const many = new Array(2000).fill('x'); // 2,000 strings → 8.2 M floats, past the per-request limit
    const res = await inferJson('spam-bow', {
      inputs: [{ name: input, shape: [many.length], datatype: 'BYTES', data: many }],
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/more elements than the \d+ allowed per request/);
  });
});

describe('BYTES for models that take strings', () => {
  it('passes strings to ONNX Runtime as they are, and refuses a NUL it would cut them at', async () => {
    const name = uniqueName('strings');
    expect((await upload(name, '1', identityModel('BYTES', ['n']))).status).toBe(201);
    const ok = await inferJson(name, {
      inputs: [{ name: 'x', shape: [3], datatype: 'BYTES', data: ['a b', 'ünï ✓', ''] }],
    });
    expect(((await ok.json()) as any).outputs[0]).toEqual({
      name: 'y',
      datatype: 'BYTES',
      shape: [3],
      data: ['a b', 'ünï ✓', ''],
    });
    const nul = await inferJson(name, { inputs: [{ name: 'x', shape: [1], datatype: 'BYTES', data: ['a\u0000b'] }] });
    expect(nul.status).toBe(400);
    expect(((await nul.json()) as { error: string }).error).toMatch(/element 0: contains a NUL character/);
    const notUtf8 = new Uint8Array([2, 0, 0, 0, 0xc3, 0x28]);
    const bad = await inferBinary(
      name,
      { inputs: [{ name: 'x', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }] },
      [notUtf8],
    );
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/BYTES element 0 is not valid UTF-8/);
  });
});

describe('featurizer declarations are checked at upload', () => {
  // The declaration goes into metadata_props through encodeModel, in this pool as anywhere: ONNX is encoded by
  // federated/model/onnx-protobuf.ts, which writes strings with TextEncoder, not through workerd's Buffer.
  const model = (features: Record<string, unknown>, buckets = 8) =>
    encodeModel(
      {
        name: 'bow',
        node: [node('Identity', ['x'], ['y'])],
        input: [valueInfo('x', ElemType.FLOAT, ['n', buckets])],
        output: [valueInfo('y', ElemType.FLOAT, ['n', buckets])],
      },
      { metadata: featurizersProp(features as never) },
    );

  it('serves a third-party graph that declares one, and featurizes its text', async () => {
    const name = uniqueName('bow');
    const f = { kind: 'hashedBagOfWords', buckets: 8, ngrams: 1, maxChars: 100 };
    expect((await upload(name, '1', model({ x: f }))).status).toBe(201);
    const res = await inferJson(name, { inputs: [{ name: 'x', shape: [1], datatype: 'BYTES', data: ['buy now'] }] });
    expect(((await res.json()) as any).outputs[0].data).toEqual(
      Array.from(hashTexts(['buy now'], f as never), (v) => Math.fround(v)),
    );
  });

  it('refuses declarations that do not fit the input, storing nothing', async () => {
    const cases: [Uint8Array, RegExp][] = [
      [
        model({ x: { kind: 'hashedBagOfWords', buckets: 16, ngrams: 1, maxChars: 100 } }),
        /input 'x' must be FP32 with 16 features in its last dimension/,
      ],
      [
        model({ nope: { kind: 'hashedBagOfWords', buckets: 8, ngrams: 1, maxChars: 100 } }),
        /names input 'nope', which the model does not have/,
      ],
      [model({ x: { kind: 'wordpiece' } }), /kind must be "hashedBagOfWords"/],
      [model({ x: { kind: 'hashedBagOfWords', buckets: 8, ngrams: 3, maxChars: 100 } }), /ngrams must be 1 or 2/],
    ];
    for (const [bytes, message] of cases) {
      const name = uniqueName('bad-bow');
      const res = await upload(name, '1', bytes);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
      expect((await SELF.fetch(`http://edge/v2/models/${name}`, { headers: ADMIN })).status).toBe(404);
    }
  });
});
