/**
 * Tensors to and from ONNX Runtime's JavaScript tensors, written once for the Worker (onnxruntime-web in workerd)
 * and the SDK's LocalModel (onnxruntime-web in a browser, or onnxruntime-node), so a device and the edge hand
 * back the same datatypes and arrays for the same model. No I/O: the caller passes its runtime's Tensor class.
 */
import { u16 } from '../bytes.ts';
import { datatypeOfOrt, ortType } from './datatypes.ts';
import type { Tensor } from './tensor.ts';
import { refuseTensor } from './tensor-error.ts';

/** What every ONNX Runtime JS build's Tensor has. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export type OrtTensorClass<T> = new (type: never, data: never, dims: readonly number[]) => T;

export function toOrtTensor<T>(Ctor: OrtTensorClass<T>, t: Tensor): T {
  return new Ctor(ortType(t.datatype) as never, t.data as never, t.shape);
}

/**
 * An ORT result as an OIP tensor. FP16 comes back as raw half-float bits in a Uint16Array whichever array the
 * runtime chose (onnxruntime-web hands out a Float16Array where the engine has one, a Uint16Array elsewhere).
 */
export function fromOrtTensor(name: string, r: OrtTensorLike): Tensor {
  const datatype = datatypeOfOrt(r.type);
  if (!datatype)
    refuseTensor(`output '${name}' has element type ${r.type}, which Open Inference Protocol v2 cannot express`);
  const shape = [...r.dims];
  if (datatype === 'BYTES') return { datatype, shape, data: [...(r.data as string[])] };
  let data = r.data as ArrayBufferView;
  if (datatype === 'FP16' && !(data instanceof Uint16Array)) data = u16(data, `output '${name}' (FP16)`);
  return { datatype, shape, data: data as never };
}
