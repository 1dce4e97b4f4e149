/**
 * Compile-time checks of response schemas against the types handlers answer with: handlers build their answers from
 * TypeScript types (the Worker's and the SDK's own, in federated/), so each schema is checked to cover its type —
 * every documented field exists in the real type with a compatible type, and renaming or removing a field on the
 * server breaks `npm run typecheck` until the schema follows. Fields the server sends but a schema leaves out are
 * allowed (looseObject: clients must ignore what they do not know).
 */
import type { z } from 'zod';

/** A schema's output type without looseObject's index signatures (an interface never has one). */
type Known<T> = T extends readonly (infer E)[]
  ? Known<E>[]
  : T extends object
    ? { [K in keyof T as string extends K ? never : K]: Known<T[K]> }
    : T;
export type Covers<T, S extends z.ZodType> = [T] extends [Known<z.output<S>>] ? true : false;
