/** What the registry refuses, as typed errors mapped to HTTP in functions/middleware/errors.ts `onError`. */

/** No such model, version or alias: 404. */
export class UnknownModelError extends Error {
  override name = 'UnknownModelError';
}

export function unknownModel(message: string): never {
  throw new UnknownModelError(message);
}
