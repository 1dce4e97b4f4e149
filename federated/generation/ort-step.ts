/**
 * A DecoderStep over any ONNX Runtime JS build's session (onnxruntime-web in a Worker or a browser,
 * onnxruntime-node): the caller passes its Tensor class and a function that runs the session, so the edge can
 * queue runs on its shared sessions and a device can run its own. No I/O here.
 */
import type { OrtTensorClass, OrtTensorLike } from '../oip/ort-tensors.ts';
import type { DecoderStep, StepOutput } from './decode-loop.ts';

export function ortDecoderStep<T extends OrtTensorLike>(
  Tensor: OrtTensorClass<T>,
  run: (feeds: Record<string, T>) => Promise<Record<string, OrtTensorLike>>,
): DecoderStep {
  return async (feeds) => {
    const ortFeeds: Record<string, T> = {};
    for (const [name, t] of Object.entries(feeds))
      ortFeeds[name] = new Tensor(t.type as never, t.data as never, t.dims);
    const results = await run(ortFeeds);
    const out: Record<string, StepOutput> = {};
    for (const [name, r] of Object.entries(results)) out[name] = { data: r.data as Float32Array, dims: r.dims };
    return out;
  };
}
