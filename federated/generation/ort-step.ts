/**
 * A DecoderStep over any ONNX Runtime JS build's session (onnxruntime-web in a Worker or a browser,
 * onnxruntime-node): the caller passes its Tensor class and a function that runs the session, so the edge can
 * queue runs on its shared sessions and a device can run its own. No I/O here.
 */
import type { OrtTensorClass, OrtTensorLike } from '../oip/ort-tensors.ts';
import { datatypeOfOrt } from '../oip/datatypes.ts';
import type { DecoderStep, StepOutput } from './decode-loop.ts';
import type { TensorSignature } from './decoder-layout.ts';

/** What every ONNX Runtime JS build says of a session's input or output. */
export interface OrtValueMetadata {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: readonly (number | string)[];
}

/**
 * A session's inputs or outputs as OIP signatures: datatype, and -1 for every open dimension (a dim_param name, a blank
 * one, or ORT-web's 2^32 − 1 for it) — as the edge's model loader records them. Non-tensors become BYTES [] (no decoder
 * has one; decoderLayout refuses them by name).
 */
export function ortSignatures(names: readonly string[], metadata: readonly OrtValueMetadata[]): TensorSignature[] {
  return names.map((name) => {
    const m = metadata.find((x) => x.name === name);
    if (!m?.isTensor || !m.type) return { name, datatype: 'BYTES', shape: [] };
    return {
      name,
      datatype: datatypeOfOrt(m.type) ?? 'BYTES',
      shape: (m.shape ?? []).map((d) =>
        typeof d === 'number' && Number.isSafeInteger(d) && d >= 0 && d < 2 ** 31 ? d : -1,
      ),
    };
  });
}

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
