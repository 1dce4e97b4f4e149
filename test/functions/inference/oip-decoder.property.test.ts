/**
 * Property test of the OIP request decoder and the binary tensor data extension parser: whatever bytes, header
 * length and JSON arrive — random, built from a model's metadata and then broken, nested deep, or a valid binary
 * body with mutated bytes — decoding either yields tensors that match their shapes or throws a typed 4xx
 * (a TensorError or an HTTPException, answering 400-499 through onError) whose message stays short. Never another throw. Pure functions, no Worker needed.
 */
import fc from 'fast-check';
import { HTTPException } from 'hono/http-exception';
import { domainError } from '../../../functions/middleware/errors.ts';
import { describe, expect, it } from 'vitest';
import { DATATYPES, DATATYPE_INFO } from '../../../federated/oip/datatypes.ts';
import { splitBinaryBody } from '../../../functions/inference/binary-body.ts';
import { describeIssue, parseJson } from '../../../functions/middleware/json-body.ts';
import { inferRequestSchema } from '../../../functions/inference/infer-request.ts';
import { type Tensor, decodeInputs } from '../../../functions/inference/tensor-codec.ts';
import { fail } from '../../../functions/middleware/errors.ts';
import type { TensorMeta } from '../../../functions/registry/model-record.ts';

const MODELS: TensorMeta[][] = [
  [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
  [
    { name: 'a', datatype: 'INT64', shape: [2] },
    { name: 'b', datatype: 'BOOL', shape: [-1] },
  ],
  [
    { name: 'h', datatype: 'FP16', shape: [-1, -1] },
    { name: 'u', datatype: 'UINT8', shape: [] },
  ],
  [
    { name: 'd', datatype: 'FP64', shape: [2, 2, 2] },
    { name: 'i', datatype: 'INT8', shape: [-1, 1] },
    { name: 'w', datatype: 'UINT64', shape: [1] },
  ],
  // A string input, and a float input that also takes text through its featurizer.
  [
    { name: 's', datatype: 'BYTES', shape: [-1] },
    {
      name: 't',
      datatype: 'FP32',
      shape: [-1, 8],
      featurizer: { kind: 'hashedBagOfWords', buckets: 8, ngrams: 2, maxChars: 100 },
    },
  ],
];
const LIMITS = { maxElements: 5000 };

/** The route's decoding steps (routes/inference.ts readRequest + decodeInputs), without the Worker. */
function decode(body: Uint8Array, headerLength: string | undefined, model: TensorMeta[]): Tensor[] {
  const { header, payload } =
    headerLength !== undefined ? splitBinaryBody(body, headerLength) : { header: parseJson(body), payload: undefined };
  const parsed = inferRequestSchema.safeParse(header);
  if (!parsed.success) fail(400, describeIssue(parsed.error));
  return decodeInputs(parsed.data.inputs, model, payload, LIMITS);
}

/** 'ok' or 'refused'; anything but a typed 4xx with a short message fails the property. */
function outcome(body: Uint8Array, headerLength: string | undefined, model: TensorMeta[]): 'ok' | 'refused' {
  let tensors: Tensor[];
  try {
    tensors = decode(body, headerLength, model);
  } catch (e) {
    const status = e instanceof HTTPException ? e.status : e instanceof Error ? domainError(e)?.status : undefined;
    if (status === undefined) throw new Error(`not a typed error: ${(e as Error)?.stack ?? e}`);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect((e as Error).message.length).toBeLessThan(600);
    return 'refused';
  }
  for (const t of tensors) {
    expect(t.data.length).toBe(t.shape.reduce((n, d) => n * d, 1));
    if (t.datatype !== 'BYTES' && DATATYPE_INFO[t.datatype].kind === 'float')
      for (const v of t.data as Float32Array) expect(Number.isFinite(v)).toBe(true);
  }
  return 'ok';
}

const text = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const deep = (depth: number, leaf: unknown): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

const scalar = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, 1, -1, 65504, 65520, 1e39, -1e39, 2 ** 53 + 2, 3.5, -0),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 30 }),
  fc.constant('s'.repeat(5000)),
  fc.constantFrom('9007199254740993', '-1', '18446744073709551616', 'NaN'),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 5 }), tie('v'), { maxKeys: 3 }),
  ),
})).v;
const data = fc.oneof(
  fc.array(scalar, { maxLength: 40 }),
  fc.array(fc.array(scalar, { maxLength: 6 }), { maxLength: 6 }),
  fc.array(fc.array(fc.array(scalar, { maxLength: 3 }), { maxLength: 3 }), { maxLength: 3 }),
  fc.tuple(fc.integer({ min: 1, max: 80 }), scalar).map(([d, leaf]) => deep(d, leaf)),
  value,
);

/** An input built from the model's metadata, then any field possibly replaced by something else. */
const input = (model: TensorMeta[]) =>
  fc.record(
    {
      name: fc.oneof(
        fc.constantFrom(...model.map((m) => m.name)),
        fc.string({ maxLength: 8 }),
        fc.constant('n'.repeat(5000)),
        value,
      ),
      datatype: fc.oneof(fc.constantFrom(...model.map((m) => m.datatype)), fc.constantFrom(...DATATYPES), value),
      shape: fc.oneof(
        fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
        fc.array(fc.oneof(fc.integer(), fc.double(), value), { maxLength: 5 }),
        fc.constant([1e9, 1e9]),
      ),
      data,
      parameters: fc.option(
        fc.oneof(fc.record({ binary_data_size: fc.oneof(fc.integer({ min: 0, max: 64 }), value) }), value),
        { nil: undefined },
      ),
    },
    { requiredKeys: ['name'] },
  );

const request = (model: TensorMeta[]) =>
  fc.record(
    {
      id: fc.option(fc.oneof(fc.string(), value), { nil: undefined }),
      inputs: fc.oneof(fc.array(input(model), { maxLength: 4 }), value),
      outputs: fc.option(fc.oneof(fc.array(fc.record({ name: fc.string() })), value), { nil: undefined }),
      parameters: fc.option(value, { nil: undefined }),
    },
    { requiredKeys: [] },
  );

/** A value of the datatype that the decoder must accept. */
const element = (dt: TensorMeta['datatype']): fc.Arbitrary<unknown> => {
  if (dt === 'BYTES') return fc.string({ maxLength: 20, unit: 'binary' }).filter((x) => !x.includes('\0')); // NUL is refused (tensor-codec.ts)
  const info = DATATYPE_INFO[dt];
  if (info.kind === 'bool') return fc.boolean();
  if (info.kind === 'int') return fc.integer({ min: info.min!, max: info.max! });
  if (info.kind === 'bigint') return fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant('9007199254740993'));
  if (info.kind === 'half') return fc.double({ min: -65504, max: 65504, noNaN: true });
  return fc.double({ min: -3e38, max: 3e38, noNaN: true });
};

const nestAs = (flat: unknown[], shape: number[]): unknown => {
  if (shape.length <= 1) return flat;
  const size = flat.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nestAs(flat.slice(i * size, (i + 1) * size), shape.slice(1)));
};

/** A request the decoder must accept: every input, dynamic dimensions 0-3, flat or nested data. */
const validRequest = (model: TensorMeta[]) =>
  fc
    .tuple(
      ...model.map((m) =>
        fc
          .tuple(
            fc.array(fc.integer({ min: 0, max: 3 }), { minLength: m.shape.length, maxLength: m.shape.length }),
            fc.boolean(),
          )
          .chain(([dims, nested]) => {
            const shape = m.shape.map((d, i) => (d < 0 ? dims[i]! : d));
            const count = shape.reduce((n, d) => n * d, 1);
            return fc.array(element(m.datatype), { minLength: count, maxLength: count }).map((flat) => ({
              name: m.name,
              datatype: m.datatype,
              shape,
              data: nested ? nestAs(flat, shape) : flat,
            }));
          }),
      ),
    )
    .map((inputs) => ({ inputs }));

/** A valid request with one input's field replaced by something random. */
const brokenRequest = (model: TensorMeta[]) =>
  fc
    .tuple(validRequest(model), fc.nat(), fc.constantFrom('name', 'datatype', 'shape', 'data', 'parameters'), value)
    .map(([r, i, field, v]) => {
      const inputs = r.inputs.map((x) => ({ ...x })) as Record<string, unknown>[];
      inputs[i % inputs.length]![field] = v;
      return { inputs };
    });

const modelIndex = fc.integer({ min: 0, max: MODELS.length - 1 });

describe('the OIP request decoder refuses with a typed 4xx or decodes, whatever it is sent', () => {
  it('random JSON values', () => {
    fc.assert(
      fc.property(value, modelIndex, (v, m) => void outcome(text(v), undefined, MODELS[m]!)),
      { numRuns: 500 },
    );
  });

  it('valid requests decode, flat or nested', () => {
    fc.assert(
      fc.property(
        modelIndex.chain((m) => fc.tuple(fc.constant(m), validRequest(MODELS[m]!))),
        ([m, r]) => {
          expect(outcome(text(r), undefined, MODELS[m]!)).toBe('ok');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('requests built from the model metadata, with any field broken', () => {
    const seen = new Set<string>();
    const any = (model: TensorMeta[]) => fc.oneof(validRequest(model), brokenRequest(model), request(model));
    fc.assert(
      fc.property(
        modelIndex.chain((m) => fc.tuple(fc.constant(m), any(MODELS[m]!))),
        ([m, r]) => {
          seen.add(outcome(text(r), undefined, MODELS[m]!));
        },
      ),
      { numRuns: 1500 },
    );
    expect(seen).toEqual(new Set(['ok', 'refused'])); // the generator reaches both sides
  });

  it('random bytes and broken JSON text', () => {
    const broken = fc.tuple(request(MODELS[0]!), fc.nat(), fc.nat({ max: 10 })).map(([r, at, cut]) => {
      const s = JSON.stringify(r);
      const i = at % (s.length + 1);
      return s.slice(0, i) + s.slice(i + cut);
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => b as Uint8Array),
          broken.map(text),
        ),
        (body) => void outcome(body, undefined, MODELS[0]!),
      ),
      { numRuns: 500 },
    );
  });

  it('nesting far deeper than any shape, in data or in any other field', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200_000 }),
        fc.constantFrom('data', 'name', 'shape', 'parameters', 'id'),
        (depth, field) => {
          const body = {
            inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3], [field]: deep(depth, 1) }],
          };
          void outcome(text(body), undefined, MODELS[0]!);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('the binary extension parser refuses with a typed 4xx or decodes, whatever it is sent', () => {
  /** A valid binary request for MODELS[1]: a (INT64 [2]) in binary, b (BOOL [n]) in binary, mixed with JSON. */
  const valid = fc.tuple(fc.integer({ min: 0, max: 6 }), fc.boolean()).map(([n, jsonB]) => {
    const header = {
      inputs: [
        { name: 'a', shape: [2], datatype: 'INT64', parameters: { binary_data_size: 16 } },
        jsonB
          ? { name: 'b', shape: [n], datatype: 'BOOL', data: new Array(n).fill(true) }
          : { name: 'b', shape: [n], datatype: 'BOOL', parameters: { binary_data_size: n } },
      ],
    };
    const json = text(header);
    const body = new Uint8Array(json.length + 16 + (jsonB ? 0 : n));
    body.set(json);
    body.set(new Uint8Array(new BigInt64Array([-5n, 7n]).buffer), json.length);
    body.fill(1, json.length + 16);
    return { body, headerLength: String(json.length) };
  });

  it('valid bodies decode', () => {
    fc.assert(
      fc.property(valid, ({ body, headerLength }) => {
        expect(outcome(body, headerLength, MODELS[1]!)).toBe('ok');
      }),
      { numRuns: 50 },
    );
  });

  it('mutated bytes, truncations, insertions and any header length', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 20 }) }),
    );
    const headerLength = fc.oneof(
      fc.constant(undefined),
      fc.integer({ min: -5, max: 400 }).map(String),
      fc.string({ maxLength: 12 }),
      fc.constantFrom(' 12', '1e3', '0x10', '99999999999999999999', ''),
    );
    fc.assert(
      fc.property(
        valid,
        fc.array(mutation, { maxLength: 4 }),
        fc.option(headerLength, { nil: null }),
        ({ body, headerLength: n }, mutations, override) => {
          let b: Uint8Array = body;
          for (const mu of mutations) {
            const at = mu.at % (b.length + 1);
            if (mu.kind === 'flip' && b.length) (b = b.slice()), (b[at % b.length] = mu.byte);
            else if (mu.kind === 'cut') b = b.slice(0, at);
            else if (mu.kind === 'insert') b = new Uint8Array([...b.subarray(0, at), ...mu.bytes, ...b.subarray(at)]);
          }
          void outcome(b, override === null ? n : override, MODELS[1]!);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('BYTES elements: lengths that overrun, bytes that are not UTF-8, counts that do not match', () => {
    /** s (BYTES [n]) framed as Triton frames it, and t as text in JSON. */
    const bytesBody = fc
      .array(
        fc.string({ maxLength: 12, unit: 'binary' }).filter((x) => !x.includes('\0')),
        { maxLength: 5 },
      )
      .map((strings) => {
        const enc = strings.map((x) => new TextEncoder().encode(x));
        const framed = new Uint8Array(enc.reduce((n, e) => n + 4 + e.length, 0));
        let o = 0;
        for (const e of enc)
          new DataView(framed.buffer).setUint32(o, e.length, true), framed.set(e, o + 4), (o += 4 + e.length);
        const json = text({
          inputs: [
            { name: 's', shape: [strings.length], datatype: 'BYTES', parameters: { binary_data_size: framed.length } },
            { name: 't', shape: [1], datatype: 'BYTES', data: ['free money!'] },
          ],
        });
        const body = new Uint8Array(json.length + framed.length);
        body.set(json), body.set(framed, json.length);
        return { body, headerLength: String(json.length) };
      });
    fc.assert(
      fc.property(bytesBody, ({ body, headerLength }) => {
        expect(outcome(body, headerLength, MODELS[4]!)).toBe('ok');
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(bytesBody, fc.nat(), fc.integer({ min: 0, max: 255 }), ({ body, headerLength }, at, byte) => {
        const b = body.slice();
        const i = Number(headerLength) + (at % Math.max(1, b.length - Number(headerLength)));
        if (i < b.length) b[i] = byte;
        void outcome(b, headerLength, MODELS[4]!);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes with a random header length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat({ max: 320 }),
        (body, n) => void outcome(body, String(n), MODELS[2]!),
      ),
      { numRuns: 500 },
    );
  });
});
