/**
 * SHA-256 as lowercase hex: how model bytes are named everywhere (R2 keys and the catalog on the edge, the device's
 * model cache). Its own module, with no dependencies, so a browser bundle that only needs it stays small.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
