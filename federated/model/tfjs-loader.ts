/**
 * TensorFlow.js, loaded when training starts: `@tensorflow/tfjs` is an optional peer dependency, so nothing here
 * imports it statically (a static import would make every bundler and Node resolve it for apps that never train).
 * `loadTfjs()` imports it (Trainer.create and selectBackend await it); `tf` is the module for the code that trains,
 * a view that fails clearly when used before loading. In Node it loads on first use, synchronously, so scripts and
 * tests can call buildTfjsModel & co. directly.
 */
import type * as Tfjs from '@tensorflow/tfjs';
import { missingDependency } from './missing-dependency.ts';

export type TfjsModule = typeof Tfjs;

const PACKAGE = '@tensorflow/tfjs';
const FEATURE = 'Training (Trainer, Participant, selectBackend)';
let loaded: TfjsModule | undefined;

/** Node's ESM view of tfjs's CommonJS build names only the exports its lexer finds; module.exports has them all. */
function unwrap(mod: TfjsModule): TfjsModule {
  const whole = (mod as { default?: TfjsModule }).default;
  return whole && typeof whole.tidy === 'function' ? whole : mod;
}

export async function loadTfjs(): Promise<TfjsModule> {
  if (loaded) return loaded;
  let mod: TfjsModule;
  try {
    // A literal specifier inside try: bundlers include tfjs when it is installed, and when it is not, esbuild leaves
    // the import to fail at run time and Vite substitutes a stub that throws (tfjs is an optional peer).
    mod = await import('@tensorflow/tfjs');
  } catch (e) {
    throw missingDependency(e, PACKAGE, FEATURE);
  }
  return (loaded ??= unwrap(mod));
}

/** The loaded module; in Node it is required on first use. */
export function tfjs(): TfjsModule {
  return (loaded ??= requireInNode());
}

function requireInNode(): TfjsModule {
  // process.getBuiltinModule (Node ≥ 20.16) keeps node:module out of browser bundles.
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const nodeModule = proc?.getBuiltinModule?.('node:module') as
    | { createRequire(url: string): (id: string) => unknown }
    | undefined;
  if (!nodeModule)
    throw new Error('TensorFlow.js is not loaded yet: await loadTfjs() first (Trainer.create and selectBackend do)');
  try {
    return nodeModule.createRequire(import.meta.url)(PACKAGE) as TfjsModule;
  } catch (e) {
    throw missingDependency(e, PACKAGE, FEATURE);
  }
}

/** `tf.*` for the training code: every property read goes to the loaded module. */
export const tf: TfjsModule = new Proxy({} as TfjsModule, { get: (_target, key) => Reflect.get(tfjs(), key) });
