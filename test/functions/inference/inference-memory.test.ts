/**
 * The WASM heap bound: ORT's heap only grows and cannot be recreated in-process, so it is created with a
 * maximum. A run that would need more fails inside ORT and, still failing with every other session released, is a
 * 507 that says out of memory; the runtime keeps serving (the 128 MiB isolate: isolate-128mib.test.ts).
 * Its own file, so this isolate's ORT starts with the small bound set below.
 */
import { describe, expect, it } from 'vitest';
import { setMaxWasmBytes, wasmHeap } from '../../../functions/inference/ort-runtime.ts';
import { matmulModel, tileSumModel } from '../../fixtures/onnx-models.ts';
import { inferJson, upload, uniqueName, uploadOk } from '../helpers.ts';

const BOUND = 256 * 1024 * 1024;
// Before the first session of this isolate (the first request registers the bundled models); vitest.config.ts gives
// the route tests the same bound through FEDGE_MAX_WASM_BYTES, which services() applies.
setMaxWasmBytes(BOUND);

const TILE = uniqueName('mem-tile');
const MATMUL = uniqueName('mem-matmul');
// 4·10⁶ × 3 floats = 48 MB per row of x inside the heap; one scalar out.
const ROWS = 4_000_000;
const batch = (n: number) => ({
  inputs: [{ name: 'x', shape: [n, 3], datatype: 'FP32', data: new Array(n * 3).fill(1) }],
});

describe('the WASM heap bound', () => {
  it('applies to this isolate (ORT had not started yet)', () => {
    expect(wasmHeap()).toEqual({ bytes: 0, max: BOUND });
  });

  it('serves runs that fit, refuses the one that does not (507), and keeps serving', async () => {
    await uploadOk(TILE, '1', tileSumModel(ROWS));
    await uploadOk(MATMUL, '1', matmulModel());
    const fits = await inferJson(TILE, batch(1));
    expect(fits.status).toBe(200);
    expect(((await fits.json()) as any).outputs[0].data[0]).toBeCloseTo(3 * ROWS, -3);
    // 8 rows: 384 MB for the Tile inside, more than the 256 MiB heap may ever hold.
    const res = await inferJson(TILE, batch(8));
    expect(res.status).toBe(507);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /^out of memory: this run needs more than the 256 MiB WASM heap bound .* even with no other model loaded/,
    );
    expect(wasmHeap().bytes).toBeLessThanOrEqual(BOUND);
    expect((await inferJson(TILE, batch(1))).status).toBe(200);
    expect(
      (await inferJson(MATMUL, { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] }] })).status,
    ).toBe(200);
    expect(wasmHeap().bytes).toBeLessThanOrEqual(BOUND);
  });

  it('refuses at upload a model whose batch of 1 needs more than the bound', async () => {
    const name = uniqueName('mem-upload');
    const res = await upload(name, '1', tileSumModel(30_000_000)); // 360 MB at batch 1
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /cannot run on inputs built from its metadata.*out of memory/,
    );
    expect(wasmHeap().bytes).toBeLessThanOrEqual(BOUND);
  });
});
