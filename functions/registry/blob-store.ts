/** Model bytes in R2, content-addressed: key = sha256, so a blob is written once and never changes (named by federated/model/digest.ts). */
const key = (sha256: string) => `blobs/sha256/${sha256}.onnx`;

export async function putBlob(bucket: R2Bucket, sha256: string, bytes: Uint8Array): Promise<void> {
  if (await bucket.head(key(sha256))) return;
  // R2 verifies the checksum on write, so a corrupted transfer is refused rather than stored.
  await bucket.put(key(sha256), bytes, { sha256, httpMetadata: { contentType: 'application/octet-stream' } });
}

export async function getBlob(bucket: R2Bucket, sha256: string): Promise<Uint8Array> {
  const obj = await bucket.get(key(sha256));
  if (!obj) throw new Error(`model blob ${sha256} is missing from R2`);
  return new Uint8Array(await obj.arrayBuffer());
}

export async function deleteBlob(bucket: R2Bucket, sha256: string): Promise<void> {
  await bucket.delete(key(sha256));
}
