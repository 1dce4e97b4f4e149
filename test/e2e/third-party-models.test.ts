/**
 * The third-party ONNX corpus (test/fixtures/third-party/README.md) against the real local server: every file is
 * uploaded, its OIP metadata must equal what onnxruntime-node reports for the same bytes (names, datatypes, shapes
 * with -1 for every open dimension), and one inference on deterministic inputs must equal onnxruntime-node's
 * outputs within 1e-4. onnxruntime-node is the reference because it is ONNX Runtime's native build: where ORT-web
 * in workerd differs from it, the fault is the server's.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalServer, startLocalServer } from './local-server.ts';

const dir = join(dirname(new URL(import.meta.url).pathname), '../fixtures/third-party');
const corpus = readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
const state = mkdtempSync(join(tmpdir(), 'fedge-third-party-'));
const ADMIN = { Authorization: 'Bearer dev-admin-token' }; // the local default in .dev.vars
const TOLERANCE = 1e-4;
let server: LocalServer | undefined;

/** onnxruntime-node's element types in OIP form (written out here, not imported, so the test checks the server's table). */
const OIP: Record<string, string> = {
  float32: 'FP32', float16: 'FP16', float64: 'FP64', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', bool: 'BOOL',
};

/**
 * Inputs a model needs that are not "any values of any small size": silero's sample rate selects one of two If
 * branches (anything else is an error by design) and its STFT needs a 512-sample window at 16 kHz.
 */
const OVERRIDES: Record<string, Record<string, { shape: number[]; values?: number[] }>> = {
  'silero-vad.onnx': { sr: { shape: [], values: [16000] }, input: { shape: [1, 512] }, h: { shape: [2, 1, 64] }, c: { shape: [2, 1, 64] } },
};
/**
 * Files the server refuses, with the reason it must give (README.md there says why). Each is still uploaded and must
 * be refused with exactly this reason; once the server serves it, this test fails and the entry goes. None today:
 * silero-vad (its STFT padding needs ≥ 97 samples) passes the upload probe's second try at longer open dimensions.
 */
const EXPECTED_REFUSALS: Record<string, RegExp> = {};
/** Every open dimension in the generated inputs; small, and not 1, so a batch of one cannot hide a broadcast bug. */
const OPEN_DIM = 3;

type Meta = { name: string; datatype: string; shape: number[] };
type Feed = { name: string; datatype: string; shape: number[]; data: number[] };

/** onnxruntime-node's metadata in OIP form: dim_param names and blank dims (its "") become -1. */
function expectedMeta(list: readonly ortNode.InferenceSession.ValueMetadata[]): Meta[] {
  return list.map((m) => {
    if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
    return { name: m.name, datatype: OIP[m.type]!, shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) };
  });
}

/** Deterministic values (a fixed LCG per file and input): floats in [-1, 1), integers in [0, 10). */
function feeds(file: string, inputs: Meta[]): Feed[] {
  return inputs.map((m, k) => {
    const o = OVERRIDES[file]?.[m.name];
    const shape = o?.shape ?? m.shape.map((d) => (d < 0 ? OPEN_DIM : d));
    const n = shape.reduce((a, b) => a * b, 1);
    let s = (k + 1) * 2654435761 + file.length;
    const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const data = o?.values ?? Array.from({ length: n }, () => (m.datatype.startsWith('FP') ? Math.fround(next() * 2 - 1) : Math.floor(next() * 10)));
    return { name: m.name, datatype: m.datatype, shape, data };
  });
}

function ortTensor(f: Feed): ortNode.Tensor {
  if (f.datatype === 'FP32') return new ortNode.Tensor('float32', Float32Array.from(f.data), f.shape);
  if (f.datatype === 'INT64') return new ortNode.Tensor('int64', BigInt64Array.from(f.data, (v) => BigInt(v)), f.shape);
  if (f.datatype === 'INT32') return new ortNode.Tensor('int32', Int32Array.from(f.data), f.shape);
  throw new Error(`no generator for ${f.datatype} (extend the test when the corpus gains one)`);
}

beforeAll(async () => {
  server = await startLocalServer({ persistTo: state });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('third-party ONNX corpus on the local server', () => {
  it('has at least 10 files, each at most 2 MB, and at least 90 % of them served', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(10);
    expect(Object.keys(EXPECTED_REFUSALS).length / corpus.length).toBeLessThanOrEqual(0.1);
    for (const f of corpus) expect(readFileSync(join(dir, f)).byteLength, f).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it.each(corpus)('%s: uploads, reports onnxruntime-node metadata, and infers equal to onnxruntime-node', async (file) => {
    const bytes = readFileSync(join(dir, file));
    const name = `tp-${file.replace(/\.onnx$/, '').toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
    const ref = await ortNode.InferenceSession.create(bytes);
    try {
      const inputs = expectedMeta(ref.inputMetadata);
      const outputs = expectedMeta(ref.outputMetadata);

      const up = await fetch(`${server!.url}/v1/models/${name}/versions/1`, { method: 'PUT', headers: { ...ADMIN, 'Content-Type': 'application/octet-stream' }, body: bytes });
      const refusal = EXPECTED_REFUSALS[file];
      if (refusal) {
        expect(up.status).toBe(400);
        expect(((await up.json()) as { error: string }).error).toMatch(refusal);
        return;
      }
      expect(up.status, await up.clone().text()).toBe(201);

      const meta = (await (await fetch(`${server!.url}/v2/models/${name}`)).json()) as { inputs: Meta[]; outputs: Meta[] };
      expect(meta.inputs).toEqual(inputs);
      expect(meta.outputs).toEqual(outputs);

      const feed = feeds(file, inputs);
      const want = await ref.run(Object.fromEntries(feed.map((f) => [f.name, ortTensor(f)])));
      const res = await fetch(`${server!.url}/v2/models/${name}/infer`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ inputs: feed }),
      });
      const body = (await res.json()) as { outputs: { name: string; datatype: string; shape: number[]; data: (number | string | boolean)[] }[] };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.outputs.map((o) => o.name).sort()).toEqual(outputs.map((o) => o.name).sort());
      for (const o of body.outputs) {
        const w = want[o.name]!;
        expect(o.datatype, o.name).toBe(OIP[w.type]);
        expect(o.shape, o.name).toEqual(w.dims);
        const got = o.data.map(Number);
        const exp = Array.from(w.data as ArrayLike<number | bigint>, Number);
        expect(got.length, o.name).toBe(exp.length);
        let worst = 0;
        for (let i = 0; i < exp.length; i++) worst = Math.max(worst, Math.abs(got[i]! - exp[i]!));
        expect(worst, `${o.name}: largest difference from onnxruntime-node`).toBeLessThanOrEqual(TOLERANCE);
      }
    } finally {
      await ref.release();
    }
  });
});
