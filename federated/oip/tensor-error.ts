/**
 * A tensor (or the body framing it) that does not fit the model or the protocol. One class for both sides: the
 * Worker answers it with a 400 (functions/middleware/errors.ts), the SDK throws it to the app.
 */
export class TensorError extends TypeError {
  override name = 'TensorError';
}

// A declaration (not an arrow function): TypeScript narrows after a call only to a declared `never` function.
export function refuseTensor(message: string): never {
  throw new TensorError(message);
}
