/**
 * Dynamic batching (functions/inference/dynamic-batcher.ts, Triton's dynamic batcher) inside workerd: concurrent
 * requests for one version run as fewer ORT calls and each gets exactly its own rows back; models whose outputs do
 * not follow their rows never batch.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { batchKey, concatInputs, splitOutputs } from '../../../functions/inference/dynamic-batcher.ts';
import type { Tensor } from '../../../functions/inference/tensor-codec.ts';
import { SessionCache } from '../../../functions/inference/session-cache.ts';
import { RunTimer } from '../../../functions/metrics/run-timing.ts';
import { matmulModel, reshapeModel } from '../../fixtures/onnx-models.ts';
import { inferJson, uniqueName, uploadOk } from '../helpers.ts';

const RESHAPE = uniqueName('batch-reshape');
beforeAll(async () => {
  await uploadOk(RESHAPE, '1', reshapeModel([1, 3])); // a graph that runs on one row only
});

const request = (rows: number, seed: number) => ({
  inputs: [
    {
      name: 'x',
      shape: [rows, 3],
      datatype: 'FP32',
      data: Array.from({ length: rows * 3 }, (_, i) => ((seed * 7 + i) % 11) / 10),
    },
  ],
});
const answer = async (model: string, body: unknown) => {
  const res = await inferJson(model, body);
  expect(res.status).toBe(200);
  return ((await res.json()) as { outputs: { shape: number[]; data: number[] }[] }).outputs[0]!;
};

describe('dynamic batching', () => {
  it('runs 24 concurrent requests as fewer ORT calls; each gets exactly the rows it would get alone', async () => {
    // Off by default (FEDGE_MAX_BATCH_SIZE 1: see docs/benchmarks.md, dynamic batching), so a cache with batching on, in workerd.
    const cache = new SessionCache(2, { maxBatchSize: 32, maxQueueDelayMs: 0 });
    const bytes = matmulModel();
    const load = async () => bytes;
    const inputs = (rows: number, seed: number): Tensor[] => [
      {
        name: 'x',
        datatype: 'FP32',
        shape: [rows, 3],
        data: Float32Array.from({ length: rows * 3 }, (_, i) => ((seed * 7 + i) % 11) / 10),
      } as Tensor,
    ];
    const requests = Array.from({ length: 24 }, (_, i) => inputs(1 + (i % 3), i));
    const alone: Tensor[][] = [];
    for (const r of requests) alone.push(await cache.run('matmul', load, r, []));
    const timers = requests.map(() => new RunTimer());
    const together = await Promise.all(requests.map((r, i) => cache.run('matmul', load, r, [], timers[i])));
    together.forEach((t, i) => {
      expect(t[0]!.shape).toEqual(alone[i]![0]!.shape);
      expect([...(t[0]!.data as Float32Array)]).toEqual([...(alone[i]![0]!.data as Float32Array)]);
    });
    const runs = timers.filter((t) => t.run.leader).length;
    expect(runs).toBeLessThan(requests.length);
    expect(Math.max(...timers.map((t) => t.run.rows))).toBeGreaterThan(3);
  });

  it('a model whose output has a fixed first dimension is never batched: concurrent requests each answer on their own', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => answer(RESHAPE, request(1, i))));
    for (const r of results) expect(r.shape).toEqual([1, 3]);
  });

  it('keys: only open-batch models, numeric inputs of equal rows, the same per-row shapes and outputs batch together', () => {
    const open = {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
    } as unknown as Parameters<typeof batchKey>[0];
    const t = (rows: number, cols = 3): Tensor =>
      ({ name: 'x', datatype: 'FP32', shape: [rows, cols], data: new Float32Array(rows * cols) }) as Tensor;
    expect(batchKey(open, [t(2)], [])).toBe(batchKey(open, [t(5)], []));
    expect(batchKey(open, [t(2)], ['y'])).not.toBe(batchKey(open, [t(2)], []));
    expect(batchKey(open, [t(2, 4)], [])).not.toBe(batchKey(open, [t(2)], []));
    expect(
      batchKey({ ...open, inputs: [{ ...open.inputs[0]!, shape: [1, 3] }] } as typeof open, [t(1)], []),
    ).toBeUndefined();
    expect(
      batchKey(open, [{ name: 'x', datatype: 'BYTES', shape: [1], data: ['a'] } as unknown as Tensor], []),
    ).toBeUndefined();
    const joined = concatInputs([[t(1)], [t(2)]]);
    expect(joined[0]!.shape).toEqual([3, 3]);
    const out: Tensor = {
      name: 'y',
      datatype: 'FP32',
      shape: [3, 2],
      data: Float32Array.from([1, 2, 3, 4, 5, 6]),
    } as Tensor;
    const split = splitOutputs([out], [1, 2])!;
    expect(split.map((s) => [s[0]!.shape, [...(s[0]!.data as Float32Array)]])).toEqual([
      [
        [1, 2],
        [1, 2],
      ],
      [
        [2, 2],
        [3, 4, 5, 6],
      ],
    ]);
    expect(splitOutputs([{ ...out, shape: [1, 6] } as Tensor], [1, 2])).toBeUndefined();
  });
});
