/**
 * Turns ONNX bytes into a ready session plus the OIP tensor metadata of its inputs and outputs.
 * Loading is the validation: bytes ORT cannot load, or I/O this server cannot speak, are refused (400).
 */
import { fail } from '../middleware/errors.ts';
import { type TensorMeta } from '../registry/model-record.ts';
import { datatypeOfOrt } from '../../federated/oip/datatypes.ts';
import { type ort, createSession } from './ort-runtime.ts';
import { quote } from './quote.ts';

export interface LoadedModel {
  session: ort.InferenceSession;
  inputs: TensorMeta[];
  outputs: TensorMeta[];
}

function describe(list: readonly ort.InferenceSession.ValueMetadata[], what: string): TensorMeta[] {
  return list.map((m) => {
    if (!m.isTensor) fail(400, `${what} ${quote(m.name)} is not a tensor; only tensor inputs and outputs can be served`);
    const datatype = datatypeOfOrt(m.type);
    if (!datatype) fail(400, `${what} ${quote(m.name)} has element type ${m.type}, which Open Inference Protocol v2 here does not serve`);
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

export async function loadModel(bytes: Uint8Array): Promise<LoadedModel> {
  if (bytes.byteLength === 0) fail(400, 'model body is empty; send the ONNX file as application/octet-stream');
  let session: ort.InferenceSession;
  try {
    session = await createSession(bytes);
  } catch (e) {
    const reason = String((e as Error)?.message ?? e).replace(/\s+/g, ' ').slice(0, 300);
    fail(400, `not a loadable ONNX model: ${reason}`);
  }
  try {
    return { session, inputs: describe(session.inputMetadata, 'input'), outputs: describe(session.outputMetadata, 'output') };
  } catch (e) {
    await session.release();
    throw e;
  }
}
