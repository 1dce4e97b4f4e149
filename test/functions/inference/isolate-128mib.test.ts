/**
 * A deployed isolate's size: ORT's WASM heap bound at 128 MiB (FEDGE_MAX_WASM_BYTES, vitest.config.ts project
 * `workers-128mib`) and the default session count. Models of 20 MiB of weights, four of which do not fit the heap
 * together, cycle through the session cache: every load and run that runs out of memory has the other sessions
 * released and succeeds on its second try. What still does not fit says so: 503 while a session in use holds the
 * memory, 507 when the run alone needs more than the bound, 400 at upload for a model that can never load here.
 */
import { describe, expect, it } from 'vitest';
import { ElemType, encodeModel, floatTensor, node, valueInfo } from '../../../federated/model/onnx-graph.ts';
import { type LoadedModel, loadModel } from '../../../functions/inference/model-loader.ts';
import { liveSessions, setMaxWasmBytes, wasmHeap } from '../../../functions/inference/ort-runtime.ts';
import { tileSumModel } from '../../fixtures/onnx-models.ts';
import { inferJson, upload, uniqueName, uploadOk } from '../helpers.ts';

const MiB = 2 ** 20;
const BOUND = 128 * MiB;
// Before the first session of this isolate, as the project's FEDGE_MAX_WASM_BYTES sets it at the first request.
setMaxWasmBytes(BOUND);

const WIDTH = 256;
/** s = ReduceSum(x [batch, 256] · W), W [256, ·] of `mib` MiB, every weight `w`: s = rows · 256 · columns · w for x = 1. */
function weightsModel(mib: number, w: number): Uint8Array {
  const cols = (mib * MiB) / 4 / WIDTH;
  return encodeModel({
    name: 'weights',
    node: [node('MatMul', ['x', 'W'], ['m']), node('ReduceSum', ['m'], ['s'], { keepdims: 0 })],
    initializer: [floatTensor('W', [WIDTH, cols], new Float32Array(WIDTH * cols).fill(w))],
    input: [valueInfo('x', ElemType.FLOAT, ['batch', WIDTH])],
    output: [valueInfo('s', ElemType.FLOAT, [])],
  });
}
const ones = (name: string, rows: number, width: number) => ({
  inputs: [{ name, shape: [rows, width], datatype: 'FP32', data: new Array(rows * width).fill(1) }],
});
const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error;

const MODELS = Array.from({ length: 10 }, (_, i) => ({ name: uniqueName(`m128-${i}`), w: (i + 1) / 64 }));
const MODEL_MIB = 20;
// ReduceSum(Tile(x [n, 3], [8·10⁶, 1])): 96 MB inside the heap per row of x — fits the 128 MiB heap alone, not twice.
const TILE = uniqueName('m128-tile');
const TILE_ROWS = 8_000_000;

describe('a 128 MiB WASM heap', () => {
  it('applies to this isolate (ORT had not started yet)', () => {
    expect(wasmHeap()).toEqual({ bytes: 0, max: BOUND });
  });

  it(`serves ten ${MODEL_MIB} MiB models in turn, twice: loads out of memory release the other sessions and succeed`, async () => {
    for (const m of MODELS) await uploadOk(m.name, '1', weightsModel(MODEL_MIB, m.w));
    const cols = (MODEL_MIB * MiB) / 4 / WIDTH;
    let fewest = Number.POSITIVE_INFINITY;
    for (let pass = 0; pass < 2; pass++) {
      for (const m of MODELS) {
        const res = await inferJson(m.name, ones('x', 1, WIDTH));
        expect(res.status, `${m.name}: ${res.status === 200 ? '' : await res.clone().text()}`).toBe(200);
        expect(((await res.json()) as any).outputs[0].data[0]).toBeCloseTo(WIDTH * cols * m.w, -2);
        expect(wasmHeap().bytes).toBeLessThanOrEqual(BOUND);
        fewest = Math.min(fewest, liveSessions());
      }
    }
    // Four sessions of 20 MiB and a fifth's load do not fit in 128 MiB: the cache (4 by default) held fewer at times,
    // because a load out of memory released the others.
    expect(fewest).toBeLessThan(4);
  });

  it('accepts a new upload whose run at upload needs the memory the cached sessions hold', async () => {
    expect(liveSessions()).toBeGreaterThan(0);
    await uploadOk(TILE, '1', tileSumModel(TILE_ROWS));
    const res = await inferJson(TILE, ones('x', 1, 3));
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).outputs[0].data[0]).toBeGreaterThan(0); // a float32 sum: not exact
  });

  it('answers 503 while a session in use holds the memory a run needs, and runs it once that is released', async () => {
    // A session outside the cache (as another upload's probe holds one): nothing can release it.
    let held: LoadedModel | undefined = await loadModel(weightsModel(24, 1));
    try {
      const res = await inferJson(TILE, ones('x', 1, 3));
      expect(res.status).toBe(503);
      expect(await errorOf(res)).toMatch(
        /^out of memory: this run needs more of the 128 MiB WASM heap bound \(FEDGE_MAX_WASM_BYTES\) than the other models in use leave free right now .*; retry shortly$/,
      );
      await held.session.release();
      held = undefined;
      expect((await inferJson(TILE, ones('x', 1, 3))).status).toBe(200);
    } finally {
      await held?.session.release();
    }
  });

  it('answers 507 when the run alone needs more than the bound, and keeps serving', async () => {
    const res = await inferJson(TILE, ones('x', 2, 3)); // 192 MB inside
    expect(res.status).toBe(507);
    expect(await errorOf(res)).toMatch(
      /^out of memory: this run needs more than the 128 MiB WASM heap bound \(FEDGE_MAX_WASM_BYTES\) even with no other model loaded \(out of memory.*\); send fewer rows or raise FEDGE_MAX_WASM_BYTES$/,
    );
    expect((await inferJson(TILE, ones('x', 1, 3))).status).toBe(200);
    expect((await inferJson(MODELS[0]!.name, ones('x', 1, WIDTH))).status).toBe(200);
    expect(wasmHeap().bytes).toBeLessThanOrEqual(BOUND);
  });

  it('refuses at upload a model that cannot load within the bound even alone (400 naming the bound, not "not loadable")', async () => {
    const res = await upload(uniqueName('m128-big'), '1', weightsModel(40, 1)); // a load needs ~3× its weights
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error).toMatch(
      /^the model needs more than the 128 MiB WASM heap bound \(FEDGE_MAX_WASM_BYTES\) to load, even with no other model loaded: .*bad_alloc/,
    );
    expect(error).not.toMatch(/not a loadable/);
    // …and the models that fit are served as before.
    expect((await inferJson(MODELS[1]!.name, ones('x', 1, WIDTH))).status).toBe(200);
  });
});
