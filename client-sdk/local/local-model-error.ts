/** What LocalModel refuses or fails at: bytes that do not match their digest, a model no provider loads, bad inputs. */
export class LocalModelError extends Error {
  override name = 'LocalModelError';
}
