/**
 * Open Inference Protocol v2 request/response bodies for the client, with the binary tensor data extension
 * (KServe "Binary Tensor Data Extension"): a JSON header, then each binary tensor's raw bytes in order; the
 * header's length travels in Inference-Header-Content-Length.
 */
import { type Tensor, tensorBytes, tensorFromBytes, tensorFromJson, tensorToJson, TensorError } from './tensors.ts';
import { isDatatype } from '../../federated/oip/datatypes.ts';
import { HEADER_LENGTH, binaryParts, joinBinaryBody } from '../../federated/oip/binary-framing.ts';

export { HEADER_LENGTH };

export interface EncodeOptions {
  /** Send the inputs' data as binary (true), JSON (false), or binary when the inputs hold ≥ threshold bytes. */
  binary: boolean | 'auto';
  binaryThreshold: number;
  /** Ask for binary outputs (default true: no float → text → float round trip). */
  binaryOutputs: boolean;
  outputs?: string[] | undefined;
  id?: string | undefined;
}

export function encodeInferRequest(
  inputs: Record<string, Tensor>,
  o: EncodeOptions,
): { body: Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const entries = Object.entries(inputs);
  const parts = new Map<string, Uint8Array>();
  const bytesOf = (name: string, t: Tensor) => parts.get(name) ?? parts.set(name, tensorBytes(t)).get(name)!;
  const total = () => entries.reduce((n, [name, t]) => n + bytesOf(name, t).byteLength, 0);
  const binary =
    o.binary === 'auto' ? entries.some(([, t]) => t.datatype === 'FP16') || total() >= o.binaryThreshold : o.binary;
  const header = {
    ...(o.id !== undefined && { id: o.id }),
    ...(o.binaryOutputs && !o.outputs && { parameters: { binary_data_output: true } }),
    inputs: entries.map(([name, t]) =>
      binary
        ? { name, shape: t.shape, datatype: t.datatype, parameters: { binary_data_size: bytesOf(name, t).byteLength } }
        : { name, shape: t.shape, datatype: t.datatype, data: tensorToJson(t) },
    ),
    ...(o.outputs && {
      outputs: o.outputs.map((name) => ({ name, ...(o.binaryOutputs && { parameters: { binary_data: true } }) })),
    }),
  };
  if (!binary)
    return {
      body: new TextEncoder().encode(JSON.stringify(header)) as Uint8Array<ArrayBuffer>,
      headers: { 'Content-Type': 'application/json' },
    };
  const { body, headerLength } = joinBinaryBody(
    header,
    entries.map(([name, t]) => bytesOf(name, t)),
  );
  return { body, headers: { 'Content-Type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) } };
}

export interface InferResponse {
  model: string;
  version: string;
  id?: string | undefined;
  outputs: Record<string, Tensor>;
}

interface OutputHeader {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown;
  parameters?: { binary_data_size?: number };
}

export function decodeInferResponse(bytes: Uint8Array, headerLength: string | null): InferResponse {
  const n = headerLength === null ? bytes.byteLength : Number(headerLength);
  if (!Number.isInteger(n) || n < 0 || n > bytes.byteLength)
    throw new TensorError(`response ${HEADER_LENGTH} ${headerLength} does not fit a ${bytes.byteLength}-byte body`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(0, n))) as {
    model_name: string;
    model_version: string;
    id?: string;
    outputs: OutputHeader[];
  };
  const parts = binaryParts(
    bytes.subarray(n),
    header.outputs.map((o) => o.parameters?.binary_data_size),
    (i) => `output '${header.outputs[i]!.name}'`,
  );
  const outputs: Record<string, Tensor> = {};
  header.outputs.forEach((o, i) => {
    if (!isDatatype(o.datatype)) throw new TensorError(`output '${o.name}': unknown datatype ${o.datatype}`);
    const part = parts[i];
    outputs[o.name] = part
      ? tensorFromBytes(o.datatype, o.shape, part, `output '${o.name}'`)
      : tensorFromJson(o.datatype, o.shape, o.data);
  });
  return { model: header.model_name, version: header.model_version, id: header.id, outputs };
}
