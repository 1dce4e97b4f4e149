/**
 * One reading of a served model (federated/model/onnx-canonical.ts; issue 31 point 6): bytes that onnxruntime's C++
 * protobuf and Fedge's codec could read as two models are refused, everything else is stored re-encoded, and what
 * the head detector reads of a model is what onnxruntime serves. Checked:
 * - the issue's crafted file (field 1 with wire type 2 hiding a second graph): onnxruntime-node serves the first
 *   graph, a wire-type-blind reader sees the second; the upload path refuses it, and so does the head detector;
 * - each other way to two readings is refused, saying which: a field outside the schema, a singular field twice,
 *   two oneof members, an enum value outside its enum, a string that is not UTF-8, onnxruntime's ORT-format
 *   identifier (onnxruntime-node then does not read the bytes as ONNX at all);
 * - every committed .onnx file (Fedge's, PyTorch's, third-party) is canonical already: stored as it came;
 * - a file that is not canonical but unambiguous (fields out of order, a non-minimal varint) is re-encoded to bytes
 *   that decode to the same message and compute the same on onnxruntime-node; canonical bytes are a fixed point;
 * - the head detector over hostile models (data that does not fit its dims, a Reshape shape of odd length, bit
 *   flips of real models) throws HeadError or finds a head: never another error (task creation answers 422).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { HeadError, detectHead } from '../../../federated/model/head/index.ts';
import { detectHeadIn } from '../../../federated/model/head/detect.ts';
import { canonicalModel, decodeServedModel } from '../../../federated/model/onnx-canonical.ts';
import { OnnxFormatError } from '../../../federated/model/onnx-format-error.ts';
import { decodeModel, encodeModel, valueInfo } from '../../../federated/model/onnx-graph.ts';
import { onnx } from '../../../federated/model/onnx-protobuf.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import {
  HOSTILE_HEADS,
  headGraph,
  headModel,
  hiddenGraphModel,
  wireBlindReading,
  withLengthDelimited,
} from './crafted-onnx.ts';

const ROOT = join(import.meta.dirname, '../../..');
const read = (path: string) => new Uint8Array(readFileSync(join(ROOT, path)));
const FILES = execFileSync('git', ['ls-files', '*.onnx'], { cwd: ROOT }).toString().trim().split('\n');
const X = Float32Array.of(1, 2, 3, 4);

async function run(bytes: Uint8Array): Promise<number[]> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', X, [1, 4]) });
    return [...(out.probabilities!.data as Float32Array)];
  } finally {
    await session.release();
  }
}

/** `fn` throws OnnxFormatError whose message matches `pattern` (and, read by the head detector, HeadError). */
function refused(bytes: Uint8Array, pattern: RegExp): void {
  expect(() => canonicalModel(bytes)).toThrow(OnnxFormatError);
  expect(() => canonicalModel(bytes)).toThrow(pattern);
  expect(() => detectHead(bytes)).toThrow(HeadError);
  expect(() => detectHead(bytes)).toThrow(pattern);
}

describe("the issue's crafted file: field 1 with wire type 2 hiding a second graph", () => {
  it('is two models: onnxruntime serves the first graph, a wire-type-blind reader trains the second', async () => {
    const { bytes } = hiddenGraphModel();
    // onnxruntime (C++ protobuf) skips the mistyped field: the served graph, every class 1/3.
    expect((await run(bytes)).map((p) => p.toFixed(3))).toEqual(['0.333', '0.333', '0.333']);
    // protobufjs' generated decode read field 1 whatever its wire type: the hidden graph, bias [0, 9, 0].
    const blind = detectHeadIn(decodeModel(wireBlindReading()));
    expect([...blind.weights[1]!.values]).toEqual([0, 9, 0]);
  });

  it('is refused at upload (canonicalModel) and by the head detector, saying which field', () => {
    refused(hiddenGraphModel().bytes, /ModelProto\.irVersion: wire type 2, expected 0/);
  });
});

describe('every other way to two readings is refused, saying which', () => {
  const served = headModel();
  const graphBytes = onnx.GraphProto.encode(headGraph(5, 9)).finish();

  it('a field outside the schema (onnxruntime keeps it unread; a newer one might read it)', () => {
    refused(
      withLengthDelimited(served, 99, graphBytes),
      /ModelProto: field 99 \(wire type 2\) is not in ONNX's schema/,
    );
    // A group, inside the graph.
    const m = decodeModel(served);
    const g = onnx.GraphProto.encode(m.graph!).finish();
    const withGroup = Uint8Array.from([...g, (9 << 3) | 3, 0x08, 0x01, (9 << 3) | 4]);
    const noGraph = onnx.ModelProto.encode({ ...m, graph: undefined }).finish();
    refused(withLengthDelimited(noGraph, 7, withGroup), /GraphProto: field 9 \(wire type 3\)/);
  });

  it('a singular field given twice (C++ merges two graphs; this codec kept the last)', () => {
    refused(withLengthDelimited(served, 7, graphBytes), /ModelProto\.graph appears twice/);
    // A scalar too: onnxruntime keeps the last, as the lenient codec does, but a canonical file has each once.
    refused(Uint8Array.from([...served, 0x08, 0x07]), /ModelProto\.irVersion appears twice/);
  });

  it('two members of a oneof (C++ keeps the last read)', () => {
    const g = headGraph(0.1);
    g.input = [{ ...valueInfo('x', 1, ['batch', 4]), type: { ...valueInfo('x', 1, [4]).type, sequenceType: {} } }];
    refused(encodeModel(g), /TypeProto: tensorType and sequenceType are members of one oneof/);
    const d = headGraph(0.1);
    d.input = [valueInfo('x', 1, ['batch', 4])];
    d.input[0]!.type!.tensorType!.shape!.dim![0] = { dimValue: 1, dimParam: 'batch' };
    refused(encodeModel(d), /TensorShapeProto_Dimension: dimValue and dimParam are members of one oneof/);
  });

  it('an enum value outside its enum (C++ leaves the field unset)', () => {
    const g = headGraph(0.1);
    g.node![2]!.attribute![0]!.type = 99;
    refused(encodeModel(g), /AttributeProto\.type: 99 is not a value of its enum/);
    const t = headGraph(0.1);
    t.initializer![0]!.dataLocation = 2;
    refused(encodeModel(t), /TensorProto\.dataLocation: 2 is not a value of its enum/);
  });

  it('a string that is not UTF-8 (two names that differ only there would be one name after U+FFFD)', () => {
    const bytes = headModel();
    const at = Buffer.from(bytes).indexOf('dense_mm');
    const bad = bytes.slice();
    bad[at + 5] = 0xff;
    expect(decodeModel(bad).graph!.node![0]!.name).toBe('dense\uFFFDmm');
    refused(bad, /name: a string that is not UTF-8/);
  });

  it("onnxruntime's ORT-format identifier at bytes 4-7: onnxruntime does not read such bytes as ONNX", async () => {
    const g = headGraph(0.1);
    const ortm = encodeModel(g, { producerName: 'ORTM-looking producer' });
    expect(new TextDecoder().decode(ortm.subarray(4, 8))).toBe('ORTM');
    await expect(ort.InferenceSession.create(ortm)).rejects.toThrow();
    await expect(
      ort.InferenceSession.create(encodeModel(g, { producerName: 'another producer' })),
    ).resolves.toBeDefined();
    refused(ortm, /bytes 4-7 read 'ORTM'/);
  });

  it('a leading U+FEFF is part of a name, as C++ protobuf reads it (TextDecoder would drop it)', () => {
    const g = headGraph(0.1);
    g.node![0]!.name = '\uFEFFdense_mm';
    const bytes = encodeModel(g);
    expect(decodeServedModel(bytes).graph!.node![0]!.name).toBe('\uFEFFdense_mm');
    expect(decodeModel(bytes).graph!.node![0]!.name).toBe('\uFEFFdense_mm');
    expect(canonicalModel(bytes)).toBe(bytes);
  });
});

describe('canonical bytes', () => {
  it.each(FILES)('%s is canonical already: stored as it came', (file) => {
    const bytes = read(file);
    expect(canonicalModel(bytes)).toBe(bytes);
  });

  it('a file out of field order with a non-minimal varint is re-encoded: the same message, the same outputs', async () => {
    const bytes = headModel(0.3, 1);
    const m = decodeModel(bytes);
    // ir_version (field 1) moved last and written in 3 bytes: C++ protobuf reads the same message.
    const rest = onnx.ModelProto.encode({ ...m, irVersion: undefined } as never).finish();
    const irVersion = Number(m.irVersion);
    const shuffled = Uint8Array.from([...rest, 0x08, 0x80 | irVersion, 0x80, 0x00]);
    expect(await run(shuffled)).toEqual(await run(bytes));
    const canonical = canonicalModel(shuffled);
    expect(canonical).not.toBe(shuffled);
    expect(canonical).toEqual(bytes);
    expect(canonicalModel(canonical)).toBe(canonical);
  });

  it('seeded bit flips of a real model: refused (OnnxFormatError), or re-encoded to a fixed point', () => {
    const rand = seededRandom(31);
    const original = read('test/fixtures/third-party/pt-if-opset11.onnx');
    let kept = 0;
    for (let i = 0; i < 1500; i++) {
      const bytes = original.slice();
      bytes[Math.floor(rand() * bytes.length)]! ^= 1 << Math.floor(rand() * 8);
      let canonical: Uint8Array;
      try {
        canonical = canonicalModel(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(OnnxFormatError);
        continue;
      }
      kept++;
      expect(canonicalModel(canonical)).toBe(canonical);
    }
    expect(kept).toBeGreaterThan(100);
  });
});

describe('the head detector over hostile models: HeadError or a head, nothing else', () => {
  it.each(HOSTILE_HEADS)('%s: HeadError', (_, bytes) => {
    expect(() => detectHead(bytes)).toThrow(HeadError);
  });

  it('seeded bit flips of two heads (a hand-built one, mnist-mlp): HeadError or a head', () => {
    const rand = seededRandom(6);
    for (const original of [headModel(), read('models/mnist-mlp/model.fp32.onnx')]) {
      let found = 0;
      for (let i = 0; i < 400; i++) {
        const bytes = original.slice();
        // Flip bits near the end too, where mnist-mlp's head and graph structure live (its weights come first).
        const at = i % 2 ? Math.floor(rand() * bytes.length) : bytes.length - 1 - Math.floor(rand() * 4000);
        bytes[Math.max(0, at)]! ^= 1 << Math.floor(rand() * 8);
        try {
          detectHead(bytes);
          found++;
        } catch (e) {
          if (!(e instanceof HeadError)) throw e;
        }
      }
      expect(found).toBeGreaterThan(0);
    }
  });
});
