/** Request helpers for route tests that run inside workerd against the Worker itself (SELF). */
import { SELF } from 'cloudflare:test';

export const ADMIN = { Authorization: 'Bearer test-admin-token' };
let counter = 0;
/** A model name no other test uses, so tests do not depend on each other's storage. */
export const uniqueName = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${counter++}`;

export function upload(name: string, version: string, bytes: Uint8Array, headers: Record<string, string> = {}) {
  return SELF.fetch(`http://edge/v1/models/${name}/versions/${version}`, {
    method: 'PUT',
    headers: { ...ADMIN, 'Content-Type': 'application/octet-stream', ...headers },
    body: bytes,
  });
}

export async function uploadOk(name: string, version: string, bytes: Uint8Array): Promise<void> {
  const res = await upload(name, version, bytes);
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`upload ${name}@${version}: ${res.status} ${await res.text()}`);
}

export function inferJson(path: string, body: unknown, headers: Record<string, string> = {}) {
  return SELF.fetch(`http://edge/v2/models/${path}/infer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** A binary-extension request: JSON header then raw parts, with Inference-Header-Content-Length. */
export function inferBinary(path: string, header: unknown, parts: ArrayBufferView[], headerLength?: string) {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const total = json.byteLength + parts.reduce((n, p) => n + p.byteLength, 0);
  const body = new Uint8Array(total);
  body.set(json);
  let off = json.byteLength;
  for (const p of parts) {
    body.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), off);
    off += p.byteLength;
  }
  return SELF.fetch(`http://edge/v2/models/${path}/infer`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/octet-stream',
      'Inference-Header-Content-Length': headerLength ?? String(json.byteLength),
    },
    body,
  });
}

/** Splits a binary-extension response into its JSON header and raw bytes. */
export async function readBinary(res: Response): Promise<{ header: any; payload: Uint8Array }> {
  const n = Number(res.headers.get('Inference-Header-Content-Length'));
  const body = new Uint8Array(await res.arrayBuffer());
  return { header: JSON.parse(new TextDecoder().decode(body.subarray(0, n))), payload: body.slice(n) };
}
