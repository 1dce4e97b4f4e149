/**
 * tfjs-backend-wasm 4.22 ships no Conv2DBackpropFilter kernel, so a Conv2D layer cannot train on WASM (only the
 * much slower CPU backend). A 2-D convolution is a 3-D one with depth 1, and the WASM backend does have
 * Conv3DBackpropFilterV2: this registers Conv2DBackpropFilter for 'wasm' as reshape → Conv3DBackpropFilterV2 →
 * reshape, all WASM kernels (reshapes share the buffer). NHWC, 'same'/'valid' padding, stride 1, no dilation;
 * anything else throws instead of computing something different. Stride 1 only because the WASM
 * Conv3DBackpropFilterV2 gives wrong filter gradients for strides > 1 (checked against the CPU backend in
 * test/federated/model/tfjs-wasm-kernels.test.ts); the platform's specs downsample with pooling.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from './tfjs-loader.ts';

type KernelFunc = (args: {
  inputs: Record<string, TF.TensorInfo>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}) => TF.TensorInfo;

export function registerWasmConvGradients(): void {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  const conv3dFilter = tf.getKernel('Conv3DBackpropFilterV2', 'wasm')?.kernelFunc as KernelFunc | undefined;
  const reshape = tf.getKernel('Reshape', 'wasm')?.kernelFunc as KernelFunc | undefined;
  if (!conv3dFilter || !reshape) return; // not the WASM backend we know; leave it alone
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: (({ inputs, backend, attrs }: Parameters<KernelFunc>[0]) => {
      const { x, dy } = inputs as { x: TF.TensorInfo; dy: TF.TensorInfo };
      const a = attrs as {
        strides: number | [number, number];
        pad: unknown;
        dataFormat: string;
        filterShape: [number, number, number, number];
      };
      if (a.dataFormat !== 'NHWC')
        throw new Error(`Conv2DBackpropFilter on wasm: dataFormat ${a.dataFormat} is not supported (NHWC only)`);
      if (a.pad !== 'same' && a.pad !== 'valid')
        throw new Error(
          `Conv2DBackpropFilter on wasm: padding ${JSON.stringify(a.pad)} is not supported ('same' or 'valid')`,
        );
      const [sh, sw] = typeof a.strides === 'number' ? [a.strides, a.strides] : a.strides;
      if (sh !== 1 || sw !== 1)
        throw new Error(
          `Conv2DBackpropFilter on wasm: strides ${sh}×${sw} are not supported (1 only); train this model on the cpu backend`,
        );
      const [n, h, w, c] = x.shape as number[];
      const [, oh, ow, co] = dy.shape as number[];
      const x5 = reshape({ inputs: { x }, backend, attrs: { shape: [n, 1, h, w, c] } });
      const dy5 = reshape({ inputs: { x: dy }, backend, attrs: { shape: [n, 1, oh, ow, co] } });
      const dw5 = conv3dFilter({
        inputs: { x: x5, dy: dy5 },
        backend,
        attrs: { strides: [1, 1, 1], pad: a.pad, filterShape: [1, ...a.filterShape] },
      });
      const dw = reshape({ inputs: { x: dw5 }, backend, attrs: { shape: a.filterShape } });
      const b = backend as { disposeData(id: object): void };
      for (const t of [x5, dy5, dw5]) b.disposeData(t.dataId);
      return dw;
    }) as never,
  });
}
