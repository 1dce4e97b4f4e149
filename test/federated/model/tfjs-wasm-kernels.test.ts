/** The WASM Conv2DBackpropFilter added in federated/model/tfjs-wasm-kernels.ts equals the CPU backend's gradient. */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { registerWasmConvGradients } from '../../../federated/model/tfjs-wasm-kernels.ts';
import { selectBackend } from '../../../client-sdk/training/backend.ts';
import { useNodeWasm } from '../../../client-sdk/training/node-backend.ts';

type Case = { stride: number; pad: 'same' | 'valid'; out: number };
const CASES: Case[] = [
  { stride: 1, pad: 'same', out: 9 },
  { stride: 1, pad: 'valid', out: 7 },
];

type Arr4 = number[][][][];
function inputs(c: Case): { x: Arr4; w: Arr4; dy: Arr4 } {
  const arr = (shape: [number, number, number, number], seed: number) =>
    tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).arraySync() as Arr4);
  return { x: arr([4, 9, 9, 3], 1), w: arr([3, 3, 3, 6], 2), dy: arr([4, c.out, c.out, 6], 3) };
}
const filterGrad = (c: Case, d: ReturnType<typeof inputs>, stride = c.stride) =>
  tf.tidy(() =>
    tf
      .grad((w) => tf.sum(tf.mul(tf.conv2d(tf.tensor4d(d.x), w as tf.Tensor4D, stride, c.pad), tf.tensor(d.dy))))(
        tf.tensor4d(d.w),
      )
      .arraySync(),
  );

describe('Conv2DBackpropFilter on tfjs-backend-wasm', () => {
  afterAll(() => tf.setBackend('cpu'));

  it('matches the CPU backend (same and valid padding), leaks no tensors, refuses strides > 1', async () => {
    await tf.setBackend('cpu');
    const data = CASES.map(inputs);
    const expected = CASES.map((c, i) => filterGrad(c, data[i]!));
    useNodeWasm();
    // selectBackend registers the Conv2DBackpropFilter kernel when it picks wasm; the second call is a no-op.
    expect(await selectBackend('wasm')).toBe('wasm');
    registerWasmConvGradients();
    CASES.forEach((c, i) => {
      const got = tf.tensor(filterGrad(c, data[i]!) as number[][][][]);
      const diff = tf.max(tf.abs(tf.sub(got, tf.tensor(expected[i] as number[][][][])))).dataSync()[0]!;
      got.dispose();
      expect(diff, `${c.pad}`).toBeLessThan(1e-3);
    });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) filterGrad(CASES[0]!, data[0]!);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => filterGrad({ stride: 2, pad: 'same', out: 5 }, inputs({ stride: 2, pad: 'same', out: 5 }))).toThrow(
      /strides 2×2 are not supported/,
    );
  });
});
