/**
 * One reading of a served model (issue 31 point 6): onnxruntime parses the bytes it serves with C++ protobuf, Fedge
 * reads the graph it trains (head detection, head surgery) with onnx-protobuf.ts. Wherever the two could read one
 * byte string as two models — a known field number with another wire type (C++: an unknown field, skipped), a
 * singular message given twice (C++: merged), two members of a oneof (C++: the last), an enum value outside its
 * enum (C++: unset), a field outside the schema (C++: kept but ignored, or meaningful to a newer onnxruntime), bytes
 * that onnxruntime takes for its own ORT format — a crafted upload could serve one graph to `/infer` while tasks
 * train and publish another.
 *
 * So every version is stored canonical (registry/publish-model.ts): decoded strictly, refusing each of those
 * (OnnxFormatError, a 400 at upload), and re-encoded by this codec; the stored bytes, whose sha256 the catalog
 * records, are what onnxruntime loads and what Fedge reads. Re-encoding leaves no room for a second reading: the
 * encoder writes each field once, in field-number order, with its declared wire type, one oneof member and known
 * enum values only. A file onnx's C++ or Python wrote (PyTorch, onnx.save, Fedge itself) re-encodes to its own
 * bytes, so such uploads are stored as they came; another is stored re-encoded, with the same message.
 *
 * decodeServedModel is the same strict reading for code that reads a stored model: a version stored before uploads
 * were canonical that is ambiguous is refused there (HeadError at task creation), not read one way of two.
 */
import { OnnxFormatError } from './onnx-format-error.ts';
import { type ModelProto, onnx } from './onnx-protobuf.ts';

/**
 * onnxruntime loads bytes as its ORT (flatbuffers) format, not as ONNX, when bytes 4–7 are its file identifier
 * "ORTM" and the buffer is longer than 8 bytes (fbs::utils::IsOrtFormatModelBytes, InferenceSession::Load).
 */
export function isOrtFormatBytes(bytes: Uint8Array): boolean {
  return bytes.length > 8 && bytes[4] === 0x4f && bytes[5] === 0x52 && bytes[6] === 0x54 && bytes[7] === 0x4d;
}

const ORT_FORMAT =
  "bytes 4-7 read 'ORTM', onnxruntime's identifier for its own ORT format: it would not read them as this ONNX model";

/** A model's message read strictly (DecodeOptions): OnnxFormatError, prefixed 'not a loadable ONNX model', else. */
export function decodeServedModel(bytes: Uint8Array): ModelProto {
  if (isOrtFormatBytes(bytes)) throw new OnnxFormatError(`not a loadable ONNX model: ${ORT_FORMAT}`);
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes, { strict: true });
  } catch (e) {
    if (!(e instanceof OnnxFormatError)) throw e;
    throw new OnnxFormatError(`not a loadable ONNX model: ${e.message}`);
  }
  if (!model.graph || !model.irVersion) throw new OnnxFormatError('not a loadable ONNX model: no graph or ir_version');
  return model;
}

/**
 * The bytes to store and serve for `bytes`: `bytes` themselves when they are already this codec's encoding of
 * their message, else that encoding. Throws OnnxFormatError for bytes decodeServedModel refuses.
 */
export function canonicalModel(bytes: Uint8Array): Uint8Array {
  const encoded = onnx.ModelProto.encode(decodeServedModel(bytes)).finish();
  // Checked again on the output: re-encoding can move bytes (a non-minimal varint shortened), and a canonical model
  // can hold 'ORTM' there (ir_version, then a producer_name that starts with it).
  if (isOrtFormatBytes(encoded)) throw new OnnxFormatError(`not a loadable ONNX model: re-encoded, ${ORT_FORMAT}`);
  return sameBytes(encoded, bytes) ? bytes : encoded;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
