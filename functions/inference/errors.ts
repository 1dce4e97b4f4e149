/**
 * What inference code refuses, as typed errors: thrown below the routes, mapped to HTTP in one place
 * (functions/middleware/errors.ts `onError`). ModelRunError (run-error.ts) is the third: ORT failed on a run.
 */

/** The request's tensors (or the body framing them) do not fit the model or the protocol: 400 (shared with the SDK). */
export { TensorError, refuseTensor } from '../../federated/oip/tensor-error.ts';

/** Model bytes that cannot be served: not loadable, I/O OIP cannot carry, or no run possible at upload: 400. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}

// Declarations (not arrow functions): TypeScript narrows after a call only to a declared `never` function.
export function refuseModel(message: string): never {
  throw new ModelLoadError(message);
}
