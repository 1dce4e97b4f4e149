/**
 * federated/model/onnx-protobuf.ts, the hand-written ONNX protobuf codec, checked the ways a user of the ONNX
 * toolchain depends on it:
 * - every committed .onnx file (Fedge's models, PyTorch and third-party fixtures) decodes and re-encodes to the same
 *   bytes, and decoding the re-encoded bytes gives the same message;
 * - an independent decoder agrees: onnxruntime-node reports every file's inputs as decoded here, loads models
 *   rewritten here (an initializer changed, metadata changed, lists repacked) and computes what they now say, and
 *   returns int64/uint64 constants written here exactly; a fixture's known facts (opset, names, dims) decode as such;
 * - int64 and uint64 are exact at their limits (a number while safe, an Int64 beyond), on the wire as protobuf says;
 * - hostile bytes (truncated, lengths past the end, over-long varints, wrong wire types, deep nesting, seeded
 *   bit flips, random streams) either decode or throw OnnxFormatError, never another error, never hang;
 * - packed and unpacked repeated numbers are both read (and written back as they came); unknown fields are skipped.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxFormatError } from '../../../federated/model/onnx-format-error.ts';
import { readMetadataProps } from '../../../federated/model/onnx-metadata.ts';
import {
  type IAttributeProto,
  type ITensorProto,
  Int64,
  MAX_DEPTH,
  type ModelProto,
  onnx,
} from '../../../federated/model/onnx-protobuf.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import { decodeModel, floatValues } from '../../../federated/model/onnx-graph.ts';

const ROOT = join(import.meta.dirname, '../../..');
const read = (path: string) => new Uint8Array(readFileSync(join(ROOT, path)));
const A = onnx.AttributeProto.AttributeType;
const T = onnx.TensorProto.DataType;

/** The committed .onnx files (git ls-files; without git, the same directories walked). */
function onnxFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '*.onnx'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return ['models', 'test/fixtures'].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith('.onnx'))
        .map((e) => relative(ROOT, join(e.parentPath, e.name))),
    );
  }
}
const FILES = onnxFiles();

/** Where two decoded messages first differ (own keys, so presence counts; bytes, Int64 and NaN by value), or undefined. */
function difference(a: unknown, b: unknown, path = '$'): string | undefined {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array)) return `${path}: bytes vs not`;
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b) ? undefined : `${path}: bytes differ`;
  }
  if (a instanceof Int64 || b instanceof Int64)
    return a instanceof Int64 && b instanceof Int64 && a.value === b.value ? undefined : `${path}: ${a} vs ${b}`;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length)
      return `${path}: lists of ${(a as unknown[])?.length} vs ${(b as unknown[])?.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = difference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const [ka, kb] = [Object.keys(a).sort(), Object.keys(b).sort()];
    if (ka.join() !== kb.join()) return `${path}: fields {${ka}} vs {${kb}}`;
    for (const k of ka) {
      const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return Object.is(a, b) ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
}

/** A deep copy with fresh lists, so the encoder writes every numeric list packed, however it was read. */
function fresh<M>(m: M): M {
  if (Array.isArray(m)) return m.map(fresh) as M;
  if (!m || typeof m !== 'object' || m instanceof Uint8Array || m instanceof Int64) return m;
  const copy = Object.create(Object.getPrototypeOf(m)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(m)) copy[k] = fresh(v);
  return copy as M;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
const hex = (s: string) =>
  Uint8Array.from(
    s
      .replace(/\s+/g, '')
      .match(/../g)!
      .map((h) => parseInt(h, 16)),
  );
const varint = (n: number | bigint): number[] => {
  let b = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (b >= 0x80n) out.push(Number(b & 0x7fn) | 0x80), (b >>= 7n);
  out.push(Number(b));
  return out;
};
const field = (no: number, wire: number, payload: ArrayLike<number> = []) =>
  wire === 2
    ? [...varint((no << 3) | 2), ...varint(payload.length), ...Array.from(payload)]
    : [...varint((no << 3) | wire), ...Array.from(payload)];

/** What decoding did: 'ok', or the error's class name when it threw. */
function outcome(decode: () => unknown): string {
  try {
    decode();
    return 'ok';
  } catch (e) {
    return (e as Error).constructor.name;
  }
}

async function session(bytes: Uint8Array) {
  return ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: 'disabled',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
}

describe('bytes as Node reads them', () => {
  it('a model read into a Node Buffer gives the same float weights as one in a plain Uint8Array (a Buffer slice is a view)', () => {
    const buffer = readFileSync(join(ROOT, 'models/mnist-mlp/model.fp32.onnx'));
    const weights = (bytes: Uint8Array) => decodeModel(bytes).graph!.initializer!.map((t) => floatValues(t));
    const fromBuffer = weights(buffer);
    const fromPlain = weights(new Uint8Array(buffer));
    expect(fromBuffer.length).toBeGreaterThan(1);
    fromBuffer.forEach((w, i) => expect(w).toEqual(fromPlain[i]));
  });
});

describe('every committed .onnx file round-trips byte for byte', () => {
  it("finds Fedge's models and the fixtures", () => {
    expect(FILES.filter((f) => /^models\/[^/]+\/model\.(fp32|int8)\.onnx$/.test(f)).length).toBeGreaterThanOrEqual(6);
    expect(FILES.filter((f) => f.startsWith('test/fixtures/')).length).toBeGreaterThanOrEqual(17);
  });

  it.each(FILES)('%s', (file) => {
    const bytes = read(file);
    const model = onnx.ModelProto.decode(bytes);
    expect(model.graph?.node?.length).toBeGreaterThan(0);
    const again = onnx.ModelProto.encode(model).finish();
    expect(again.length).toBe(bytes.length);
    expect(sameBytes(again, bytes)).toBe(true);
    expect(difference(onnx.ModelProto.decode(again), model)).toBeUndefined();
    // Written with every numeric list packed (as Fedge's own builders write them), it decodes to the same message.
    expect(difference(onnx.ModelProto.decode(onnx.ModelProto.encode(fresh(model)).finish()), model)).toBeUndefined();
  });

  it("PyTorch's files (proto2, written by ONNX's C++) keep their unpacked lists: repacking them changes the bytes, not the message", () => {
    const bytes = read('test/fixtures/third-party/pt-int64-scalar.onnx');
    const model = onnx.ModelProto.decode(bytes);
    const packed = onnx.ModelProto.encode(fresh(model)).finish();
    expect(sameBytes(packed, bytes)).toBe(false);
    expect(sameBytes(onnx.ModelProto.encode(model).finish(), bytes)).toBe(true);
  });
});

describe('an independent decoder agrees (onnxruntime-node)', () => {
  const ORT_TYPE: Record<number, string> = {
    [T.FLOAT]: 'float32',
    [T.INT64]: 'int64',
    [T.INT32]: 'int32',
    [T.BOOL]: 'bool',
    [T.DOUBLE]: 'float64',
    [T.UINT8]: 'uint8',
    [T.INT8]: 'int8',
    [T.FLOAT16]: 'float16',
  };

  it("reports every file's inputs (names, element types, dims fixed, named and blank) as decoded here", async () => {
    for (const file of FILES) {
      const g = onnx.ModelProto.decode(read(file)).graph!;
      const inits = new Set(g.initializer!.map((t) => t.name));
      const expected = g
        .input!.filter((i) => !inits.has(i.name))
        .map((i) => ({
          name: i.name,
          isTensor: true,
          type: ORT_TYPE[i.type!.tensorType!.elemType!],
          shape: i.type!.tensorType!.shape!.dim!.map((d) =>
            Object.hasOwn(d, 'dimValue') ? Number(d.dimValue) : (d.dimParam ?? ''),
          ),
        }));
      const s = await session(read(file));
      try {
        expect(s.inputMetadata, file).toEqual(expected);
      } finally {
        await s.release();
      }
    }
  });

  it('pt-int64-scalar.onnx decodes to what its export says', () => {
    const m = onnx.ModelProto.decode(read('test/fixtures/third-party/pt-int64-scalar.onnx'));
    expect([m.irVersion, m.producerName, m.producerVersion]).toEqual([7, 'pytorch', '1.13.0']);
    expect(m.opsetImport).toHaveLength(1);
    expect(m.opsetImport[0]!.version).toBe(13);
    expect(Object.hasOwn(m.opsetImport[0]!, 'domain') ? m.opsetImport[0]!.domain : '').toBe('');
    const g = m.graph!;
    expect(g.input!.map((i) => [i.name, i.type!.tensorType!.elemType])).toEqual([
      ['x', T.FLOAT],
      ['k', T.INT64],
    ]);
    expect(g.input![1]!.type!.tensorType!.shape!.dim).toEqual([]); // a scalar: a shape with no dims
    expect(g.output!.map((o) => o.name)).toEqual(['y', 'k2']);
    expect(g.initializer!.map((t) => [t.name, t.dataType, t.dims, t.rawData!.length])).toEqual([
      ['fc.weight', T.FLOAT, [5, 5], 100],
      ['fc.bias', T.FLOAT, [5], 20],
    ]);
    expect(g.node!.map((n) => n.opType)).toEqual(['Gemm', 'Cast', 'Mul', 'Add', 'Constant', 'Mul']);
    const gemm = g.node![0]!.attribute!;
    expect(gemm.map((a) => [a.name, a.type, a.type === A.INT ? a.i : a.f])).toEqual([
      ['alpha', A.FLOAT, 1],
      ['beta', A.FLOAT, 1],
      ['transB', A.INT, 1],
    ]);
  });

  it('runs a model whose initializer was rewritten here: the output moves by exactly that much', async () => {
    const file = 'test/fixtures/third-party/pt-conv1d-anon-dims.onnx'; // … Gemm(fc.weight, fc.bias) → out [n, 2]
    const bytes = read(file);
    const signal = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 2 * 4 * 16 }, (_, i) => Math.sin(i * 0.37)),
      [2, 4, 16],
    );
    const outOf = async (b: Uint8Array) => {
      const s = await session(b);
      try {
        return Float32Array.from((await s.run({ signal })).out!.data as Float32Array);
      } finally {
        await s.release();
      }
    };
    const before = await outOf(bytes);

    const m = onnx.ModelProto.decode(bytes);
    const bias = m.graph!.initializer!.find((t) => t.name === 'fc.bias')!;
    const values = new Float32Array(bias.rawData!.slice().buffer);
    values[1]! += 0.75;
    bias.rawData = new Uint8Array(values.buffer);
    const after = await outOf(onnx.ModelProto.encode(m).finish());
    for (let row = 0; row < 2; row++) {
      expect(after[row * 2]).toBe(before[row * 2]);
      expect(after[row * 2 + 1]! - before[row * 2 + 1]!).toBeCloseTo(0.75, 5);
    }

    // The same weights as float_data (packed floats) instead of raw_data, and every list repacked: the same output.
    const asFloats = fresh(onnx.ModelProto.decode(bytes));
    for (const t of asFloats.graph!.initializer!) {
      t.floatData = Array.from(new Float32Array(t.rawData!.slice().buffer));
      delete t.rawData;
    }
    const rewritten = onnx.ModelProto.encode(asFloats).finish();
    expect(
      onnx.ModelProto.decode(rewritten).graph!.initializer!.every(
        (t) => !Object.hasOwn(t, 'rawData') && t.floatData!.length > 0,
      ),
    ).toBe(true);
    expect(await outOf(rewritten)).toEqual(before);
  });

  it('loads a model whose metadata was rewritten here (long, non-ASCII strings) and answers as before; the hand-walking reader sees the new entries', async () => {
    const bytes = read('models/spam-bow/model.fp32.onnx');
    const m = onnx.ModelProto.decode(bytes);
    const metadataBytes = onnx.ModelProto.encode(onnx.ModelProto.create({ metadataProps: m.metadataProps })).finish()
      .length;
    const labels = m.metadataProps.find((p) => p.key === 'fedge.labels')!;
    labels.value = JSON.stringify(['ham — gewöhnliche Post', `spam 🚫 « pourriel » ${'x'.repeat(60)}`]);
    m.metadataProps.push({ key: 'fedge.note ✓', value: '日本語のメモ'.repeat(10) });
    const rewritten = onnx.ModelProto.encode(m).finish();

    expect(readMetadataProps(rewritten)).toEqual({
      ...readMetadataProps(bytes),
      'fedge.labels': labels.value,
      'fedge.note ✓': '日本語のメモ'.repeat(10),
    });
    expect(onnx.ModelProto.decode(rewritten).metadataProps.map((p) => [p.key, p.value])).toEqual(
      m.metadataProps.map((p) => [p.key, p.value]),
    );
    // metadata_props (field 14) is written last: every byte before it, the graph's included, is unchanged.
    const before = bytes.length - metadataBytes;
    expect(bytes[before]).toBe((14 << 3) | 2);
    expect(sameBytes(rewritten.subarray(0, before), bytes.subarray(0, before))).toBe(true);

    const input = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 4096 }, (_, i) => (i % 97 === 0 ? 1 : 0)),
      [1, 4096],
    );
    const [s1, s2] = [await session(bytes), await session(rewritten)];
    try {
      expect((await s2.run({ input })).probabilities!.data).toEqual((await s1.run({ input })).probabilities!.data);
    } finally {
      await s1.release();
      await s2.release();
    }
  });
});

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const P53 = 2n ** 53n;
/** The limits: safe values come back as numbers, the rest as Int64. */
const LIMITS = [INT64_MIN, -(P53 + 1n), -P53, -(P53 - 1n), -1n, 0n, 1n, P53 - 1n, P53, P53 + 1n, INT64_MAX];
const isSafe = (b: bigint) => b >= -(P53 - 1n) && b <= P53 - 1n;
const int = (b: bigint) => (isSafe(b) ? Number(b) : new Int64(b));
/** A decoded int64 as a bigint, checking its form: a number exactly when safe. */
function big(v: unknown): bigint {
  if (typeof v === 'number') {
    expect(Number.isSafeInteger(v)).toBe(true);
    return BigInt(v);
  }
  expect(v).toBeInstanceOf(Int64);
  const b = (v as Int64).value;
  expect(isSafe(b)).toBe(false);
  return b;
}

describe('int64 and uint64 are exact at the limits', () => {
  it('TensorProto dims and int64_data, AttributeProto i and ints: encode → decode gives each limit back, number or Int64', () => {
    for (const b of LIMITS) {
      const t = onnx.TensorProto.decode(
        onnx.TensorProto.encode({ dims: [int(b), 3], int64Data: [int(b)], dataType: T.INT64 }).finish(),
      );
      expect([big(t.dims![0]), big(t.int64Data![0]), t.dims![1]]).toEqual([b, b, 3]);
      const a = onnx.AttributeProto.decode(
        onnx.AttributeProto.encode({ name: 'v', type: A.INT, i: int(b), ints: [int(b), int(-b)] }).finish(),
      );
      expect([big(a.i), big(a.ints![0]), big(a.ints![1])]).toEqual([b, b, BigInt.asIntN(64, -b)]);
    }
    const all = onnx.TensorProto.decode(onnx.TensorProto.encode({ int64Data: LIMITS.map(int) }).finish());
    expect(all.int64Data!.map(big)).toEqual(LIMITS);
  });

  it('uint64_data keeps UINT64_MAX and 2^63 unsigned; the same bits in int64_data read as -1 and INT64_MIN', () => {
    const values = [0n, P53 - 1n, P53, P53 + 1n, 2n ** 63n, UINT64_MAX];
    const bytes = onnx.TensorProto.encode({
      uint64Data: values.map((b) => (b < P53 ? Number(b) : new Int64(b))),
    }).finish();
    expect(bytes[0]).toBe((11 << 3) | 2);
    expect(
      onnx.TensorProto.decode(bytes).uint64Data!.map((v) => (typeof v === 'number' ? BigInt(v) : v.value)),
    ).toEqual(values);
    const asSigned = bytes.slice();
    asSigned[0] = (7 << 3) | 2; // the same packed list as int64_data: the two's-complement reading
    expect(onnx.TensorProto.decode(asSigned).int64Data!.map(big)).toEqual(values.map((b) => BigInt.asIntN(64, b)));
  });

  it("on the wire as protobuf says: -1 and INT64_MIN in ten bytes, 2^53+1 in eight, UINT64_MAX as -1's bits", () => {
    expect(onnx.AttributeProto.encode({ i: -1 }).finish()).toEqual(hex('18 ffffffffffffffffff 01'));
    expect(onnx.AttributeProto.encode({ i: new Int64(INT64_MIN) }).finish()).toEqual(hex('18 80808080808080808001'));
    expect(onnx.AttributeProto.encode({ i: new Int64(INT64_MAX) }).finish()).toEqual(hex('18 ffffffffffffffff7f'));
    expect(onnx.AttributeProto.encode({ i: new Int64(P53 + 1n) }).finish()).toEqual(hex('18 8180808080808010'));
    expect(onnx.TensorProto.encode({ uint64Data: [new Int64(UINT64_MAX)] }).finish()).toEqual(
      hex('5a 0a ffffffffffffffffff01'),
    );
    // int32 enums: negative ones sign-extended to ten bytes, as protobuf writes them
    expect(onnx.AttributeProto.encode({ type: -2 }).finish()).toEqual(hex('a001 feffffffffffffffff01'));
    expect(onnx.AttributeProto.decode(hex('a001 feffffffffffffffff01')).type).toBe(-2);
  });

  it('any int64 and uint64 (fast-check, biased to the limits) round-trips exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.bigInt({ min: 0n, max: UINT64_MAX }), (s, u) => {
        const t = onnx.TensorProto.decode(
          onnx.TensorProto.encode({
            dims: [int(s)],
            int64Data: [int(s), 7],
            uint64Data: [u < P53 ? Number(u) : new Int64(u)],
          }).finish(),
        );
        const uv = t.uint64Data![0]!;
        return (
          big(t.dims![0]) === s &&
          big(t.int64Data![0]) === s &&
          t.int64Data![1] === 7 &&
          (typeof uv === 'number' ? BigInt(uv) : uv.value) === u
        );
      }),
      { seed: 29, numRuns: 500 },
    );
  });

  it("protobufjs Longs and bigints (what onnx-proto's users held) are written exactly too", () => {
    const long = { low: 1, high: 0x200000, unsigned: false }; // 2^53 + 1
    const a = onnx.AttributeProto.decode(
      onnx.AttributeProto.encode({ i: long as unknown as Int64, ints: [INT64_MIN as unknown as Int64] }).finish(),
    );
    expect([big(a.i), big(a.ints![0])]).toEqual([P53 + 1n, INT64_MIN]);
  });

  it('onnxruntime-node reads the limits written here exactly: Constant value_ints, value_int, int64_data, uint64_data, and Slice to INT64_MAX', async () => {
    const ints: IAttributeProto = { name: 'value_ints', type: A.INTS, ints: LIMITS.map(int) };
    const tensor = (dataType: number, data: Partial<ITensorProto>): IAttributeProto => ({
      name: 'value',
      type: A.TENSOR,
      t: { dataType, ...data },
    });
    const u64 = [UINT64_MAX, 2n ** 63n, P53 + 1n, 5n];
    const vi = (name: string, elemType: number, dims: number[]) => ({
      name,
      type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'limits',
        node: [
          { opType: 'Constant', output: ['ints'], attribute: [ints] },
          {
            opType: 'Constant',
            output: ['i'],
            attribute: [{ name: 'value_int', type: A.INT, i: new Int64(INT64_MIN) }],
          },
          {
            opType: 'Constant',
            output: ['i64'],
            attribute: [tensor(T.INT64, { dims: [LIMITS.length], int64Data: LIMITS.map(int) })],
          },
          {
            opType: 'Constant',
            output: ['u64'],
            attribute: [
              tensor(T.UINT64, {
                dims: [u64.length],
                uint64Data: u64.map((b) => (b < P53 ? Number(b) : new Int64(b))),
              }),
            ],
          },
          { opType: 'Slice', input: ['x', 'one', 'max'], output: ['tail'] },
          { opType: 'Slice', input: ['x', 'minus1', 'min', 'zero', 'minus1'], output: ['reversed'] },
        ],
        initializer: [
          { name: 'one', dataType: T.INT64, dims: [1], int64Data: [1] },
          { name: 'max', dataType: T.INT64, dims: [1], int64Data: [new Int64(INT64_MAX)] },
          { name: 'min', dataType: T.INT64, dims: [1], int64Data: [new Int64(INT64_MIN)] },
          { name: 'minus1', dataType: T.INT64, dims: [1], int64Data: [-1] },
          { name: 'zero', dataType: T.INT64, dims: [1], int64Data: [0] },
        ],
        input: [vi('x', T.FLOAT, [5])],
        output: [
          vi('ints', T.INT64, [LIMITS.length]),
          vi('i', T.INT64, []),
          vi('i64', T.INT64, [LIMITS.length]),
          vi('u64', T.UINT64, [u64.length]),
          vi('tail', T.FLOAT, [4]),
          vi('reversed', T.FLOAT, [5]),
        ],
      },
    });
    const s = await session(onnx.ModelProto.encode(model).finish());
    try {
      const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([10, 11, 12, 13, 14]), [5]) });
      expect(Array.from(out.ints!.data as BigInt64Array)).toEqual(LIMITS);
      expect(out.i!.data).toEqual(BigInt64Array.from([INT64_MIN]));
      expect(Array.from(out.i64!.data as BigInt64Array)).toEqual(LIMITS);
      expect(Array.from(out.u64!.data as BigUint64Array)).toEqual(u64);
      expect(Array.from(out.tail!.data as Float32Array)).toEqual([11, 12, 13, 14]);
      expect(Array.from(out.reversed!.data as Float32Array)).toEqual([14, 13, 12, 11, 10]);
    } finally {
      await s.release();
    }
  });
});

describe('hostile bytes: a model or OnnxFormatError, nothing else', () => {
  const small = read('test/fixtures/third-party/pt-if-opset11.onnx'); // 1.2 kB, with two subgraphs
  const refuses = (
    bytes: ArrayLike<number>,
    message: RegExp,
    codec: { decode(b: Uint8Array): unknown } = onnx.ModelProto,
  ) => {
    let error: unknown;
    try {
      codec.decode(Uint8Array.from(bytes));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OnnxFormatError);
    expect((error as Error).message).toMatch(message);
  };

  it('every truncation of a real model: OnnxFormatError, or a shorter message that ends on a field boundary', () => {
    const outcomes = new Map<string, number>();
    for (let n = 0; n < small.length; n++) {
      const o = outcome(() => onnx.ModelProto.decode(small.subarray(0, n)));
      outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    }
    expect([...outcomes.keys()].sort()).toEqual(['OnnxFormatError', 'ok']);
    expect(outcomes.get('ok')).toBeLessThan(10); // the top-level field boundaries only
    for (const file of ['models/mnist-cnn/model.fp32.onnx', 'test/fixtures/third-party/silero-vad.onnx']) {
      const bytes = read(file);
      for (const cut of [1, 100, bytes.length >> 1, bytes.length - 1])
        refuses(bytes.subarray(0, bytes.length - cut), /truncated/);
    }
  });

  it('lengths past the end: of the buffer, of the enclosing message, beyond 4 GiB', () => {
    refuses(hex('3a 64 0a0100'), /truncated: 100 more bytes needed at byte 2 of 5/); // graph of 100 bytes in 3
    refuses(hex('12 05 6162'), /truncated/); // producer_name
    refuses([...field(7, 2, [...varint((1 << 3) | 2), 10, 0x22, 0x01, 0x61]), ...new Array(20).fill(0)], /truncated/); // a node longer than its graph
    refuses(hex('3a 8080808010'), /length beyond 4 GiB/);
    refuses(hex('3a ffffffff0f'), /truncated: 4294967295 more bytes/);
    refuses(hex('0a 05 0801 0802'), /truncated/, onnx.TensorProto); // packed dims of 5 bytes in 4
    refuses(hex('0a 02 08 80 01'), /TensorProto\.dims: packed values overrun/, onnx.TensorProto); // a varint across the list's end
    refuses(hex('22 03 000000'), /truncated: 4 more bytes/, onnx.TensorProto); // a packed float of 3 bytes
  });

  it('varints: over-long, truncated, and a field number beyond 32 bits', () => {
    refuses(hex('08 8080808080808080808001'), /varint longer than 10 bytes/);
    refuses(hex('08 ffff'), /truncated varint/);
    refuses(hex('80'), /truncated varint/);
    refuses(hex('8880808080 01 00'), /invalid field number/);
    refuses(hex('00 00'), /invalid field number/);
  });

  it('a wrong wire type for a known field, and wire types that do not exist', () => {
    refuses(hex('0a 01 08'), /ModelProto\.irVersion: wire type 2, expected 0/);
    refuses(hex('38 01'), /ModelProto\.graph: wire type 0, expected 2/);
    refuses(hex('10 00'), /AttributeProto\.f: wire type 0, expected 5/, onnx.AttributeProto);
    refuses(hex('25 00000000'), /AttributeProto\.s: wire type 5, expected 2/, onnx.AttributeProto);
    refuses(hex('1b 1c'), /AttributeProto\.i: wire type 3, expected 0/, onnx.AttributeProto);
    refuses(hex('0d 00000000'), /TensorProto\.dims: wire type 5, expected 0/, onnx.TensorProto);
    refuses(hex('fe07 00'), /invalid wire type 6/);
    refuses(hex('ff07 00'), /invalid wire type 7/);
    refuses(hex('fc07'), /invalid wire type 4/); // an end of group with no group
    refuses(hex('fb07 8c08'), /mismatched end of group/);
    refuses(hex('fb07 0801'), /unterminated group/);
  });

  it(`nesting: ${MAX_DEPTH} levels decode and one more is refused, exactly where onnxruntime-node's protobuf draws the line`, async () => {
    const base = read('test/fixtures/third-party/pt-int64-scalar.onnx');
    const groups = (n: number) =>
      Uint8Array.from([
        ...base,
        ...Array(n)
          .fill(varint((1000 << 3) | 3))
          .flat(),
        ...Array(n)
          .fill(varint((1000 << 3) | 4))
          .flat(),
      ]);
    const sequences = (k: number) => {
      // graph › value_info › TypeProto › (sequence › TypeProto) × k › tensor: 4 + 2k levels
      const m = onnx.ModelProto.decode(base);
      let t: object = { tensorType: { elemType: T.FLOAT } };
      for (let i = 0; i < k; i++) t = { sequenceType: { elemType: t } };
      m.graph!.valueInfo = [{ name: 'unused', type: t }];
      return onnx.ModelProto.encode(m).finish();
    };
    const ortLoads = async (b: Uint8Array) => {
      try {
        await (await session(b)).release();
        return true;
      } catch (e) {
        expect((e as Error).message).toMatch(/protobuf parsing failed/);
        return false;
      }
    };
    for (const [bytes, ok] of [
      [groups(MAX_DEPTH), true],
      [groups(MAX_DEPTH + 1), false],
      [sequences(48), true],
      [sequences(49), false],
    ] as const) {
      expect(outcome(() => onnx.ModelProto.decode(bytes))).toBe(ok ? 'ok' : 'OnnxFormatError');
      expect(await ortLoads(bytes)).toBe(ok);
    }
    // Far deeper than the stack allows: still the typed error, not a RangeError.
    refuses(Uint8Array.from([0x7b, ...new Array(200_000).fill(0x0b)]), /nested more than 100 deep/);
    // TypeProto.sequence_type.elem_type… 50,000 deep, built backwards: each level's length, then its tag
    const backwards: number[] = [];
    for (let i = 0; i < 100_000; i++) backwards.push(...varint(backwards.length).reverse(), i % 2 ? 0x22 : 0x0a);
    refuses(backwards.reverse(), /nested more than 100 deep/, onnx.TypeProto);
  });

  it('3,000 seeded bit flips of a real model: each decodes (and re-encodes to the same message) or throws OnnxFormatError', () => {
    const rand = seededRandom(29);
    const counts = { ok: 0, refused: 0 };
    for (let i = 0; i < 3000; i++) {
      const bytes = small.slice();
      for (let flips = 1 + Math.floor(rand() * 3); flips > 0; flips--)
        bytes[Math.floor(rand() * bytes.length)]! ^= 1 << Math.floor(rand() * 8);
      let m: ModelProto;
      try {
        m = onnx.ModelProto.decode(bytes);
      } catch (e) {
        if (!(e instanceof OnnxFormatError))
          throw new Error(`flip ${i}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
        counts.refused++;
        continue;
      }
      counts.ok++;
      const d = difference(onnx.ModelProto.decode(onnx.ModelProto.encode(m).finish()), m);
      if (d) throw new Error(`flip ${i}: re-encoded differs at ${d}`);
    }
    expect(counts.ok).toBeGreaterThan(300);
    expect(counts.refused).toBeGreaterThan(300);
  });

  it('random bytes and random field streams (fast-check): a message or OnnxFormatError', () => {
    const codecs = [
      onnx.ModelProto,
      onnx.GraphProto,
      onnx.NodeProto,
      onnx.AttributeProto,
      onnx.TensorProto,
      onnx.TypeProto,
    ];
    const typed = (b: Uint8Array) =>
      codecs.every((c) => ['ok', 'OnnxFormatError'].includes(outcome(() => c.decode(b))));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), typed), { seed: 8, numRuns: 500 });
    const entry = fc.record({
      no: fc.integer({ min: 1, max: 26 }),
      wire: fc.integer({ min: 0, max: 7 }),
      payload: fc.uint8Array({ maxLength: 12 }),
    });
    const stream = fc
      .array(entry, { maxLength: 12 })
      .map((es) => Uint8Array.from(es.flatMap((e) => field(e.no, e.wire, e.payload))));
    fc.assert(fc.property(stream, typed), { seed: 8, numRuns: 1000 });
  });
});

describe('repeated numbers, packed and unpacked; unknown fields', () => {
  it('reads dims, float_data, int32_data, double_data and uint64_data in either form, and mixed', () => {
    const f32 = (x: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, x, true);
      return [...b];
    };
    const f64 = (x: number) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, x, true);
      return [...b];
    };
    const unpacked = [
      ...field(1, 0, varint(2)),
      ...field(1, 0, varint(3)),
      ...field(4, 5, f32(1.5)),
      ...field(4, 5, f32(-2)),
      ...field(5, 0, varint(-7)),
      ...field(5, 0, varint(9)),
      ...field(10, 1, f64(Math.PI)),
      ...field(11, 0, varint(UINT64_MAX)),
    ];
    const packed = [
      ...field(1, 2, [...varint(2), ...varint(3)]),
      ...field(4, 2, [...f32(1.5), ...f32(-2)]),
      ...field(5, 2, [...varint(-7), ...varint(9)]),
      ...field(10, 2, f64(Math.PI)),
      ...field(11, 2, varint(UINT64_MAX)),
    ];
    const expected = {
      dims: [2, 3],
      floatData: [1.5, -2],
      int32Data: [-7, 9],
      doubleData: [Math.PI],
      uint64Data: [new Int64(UINT64_MAX)],
    };
    for (const bytes of [unpacked, packed]) {
      const t = onnx.TensorProto.decode(Uint8Array.from(bytes));
      expect(
        difference({ ...t }, { ...expected, stringData: [], int64Data: [], externalData: [], metadataProps: [] }),
      ).toBeUndefined();
      expect(onnx.TensorProto.encode(t).finish()).toEqual(Uint8Array.from(bytes)); // written back in the form read
    }
    // Both forms in one message: the values concatenate, in order.
    const mixed = onnx.TensorProto.decode(
      Uint8Array.from([
        ...field(1, 2, [...varint(4), ...varint(5)]),
        ...field(1, 0, varint(6)),
        ...field(1, 2, varint(7)),
      ]),
    );
    expect(mixed.dims).toEqual([4, 5, 6, 7]);
    expect(onnx.TensorProto.decode(onnx.TensorProto.encode(mixed).finish()).dims).toEqual([4, 5, 6, 7]);
    // AttributeProto ints and floats too; a list built here (not decoded) is written packed.
    expect(
      onnx.AttributeProto.decode(
        Uint8Array.from([...field(8, 0, varint(-1)), ...field(8, 2, varint(2)), ...field(7, 5, f32(0.25))]),
      ),
    ).toMatchObject({ ints: [-1, 2], floats: [0.25] });
    expect(onnx.AttributeProto.encode({ ints: [1, 2] }).finish()).toEqual(hex('42 02 0102'));
  });

  it('skips unknown fields of every wire type, between and inside known ones', () => {
    const unknown = [
      ...field(99, 0, varint(INT64_MIN)),
      ...field(98, 1, new Array(8).fill(0xee)),
      ...field(97, 2, [1, 2, 3, 0xff]),
      ...field(96, 5, [9, 9, 9, 9]),
      ...field(95, 3, [...field(1, 0, [1]), ...field(2, 2, [0x80]), ...field(3, 3, []), ...field(3, 4, [])]),
      ...field(95, 4, []),
    ];
    const node = [...field(4, 2, new TextEncoder().encode('Relu')), ...unknown, ...field(1, 2, [0x78])];
    const withUnknown = Uint8Array.from([
      ...unknown,
      ...field(1, 0, [7]),
      ...unknown,
      ...field(7, 2, [...unknown, ...field(1, 2, node), ...field(2, 2, [0x67])]),
      ...unknown,
    ]);
    const m = onnx.ModelProto.decode(withUnknown);
    expect(m.irVersion).toBe(7);
    expect(m.graph!.name).toBe('g');
    expect(m.graph!.node!.map((n) => [n.opType, n.input])).toEqual([['Relu', ['x']]]);
    // Re-encoded without them: the bytes of the same model written with none.
    const plain = Uint8Array.from([
      ...field(1, 0, [7]),
      ...field(7, 2, [
        ...field(1, 2, [...field(1, 2, [0x78]), ...field(4, 2, new TextEncoder().encode('Relu'))]),
        ...field(2, 2, [0x67]),
      ]),
    ]);
    expect(onnx.ModelProto.encode(m).finish()).toEqual(plain);
  });

  it('strings: long and non-ASCII ones round-trip; a lone surrogate is written as U+FFFD with the length TextEncoder gives', () => {
    const names = ['x'.repeat(200), 'Größe/ノード/😀'.repeat(7), '\ud800x', 'a\udc00'];
    const bytes = onnx.NodeProto.encode({ input: names }).finish();
    expect(onnx.NodeProto.decode(bytes).input).toEqual(
      names.map((s) => new TextDecoder().decode(new TextEncoder().encode(s))),
    );
  });
});
