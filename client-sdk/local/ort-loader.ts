/**
 * onnxruntime-web, imported when a LocalModel loads: it is an optional peer dependency (about 140 MB installed), so
 * an app that only calls the edge installs and bundles without it.
 */
import type * as Ort from 'onnxruntime-web';
import { missingDependency } from '../../federated/model/missing-dependency.ts';

export type OrtModule = typeof Ort;

export async function loadOrt(): Promise<OrtModule> {
  try {
    // A literal specifier inside try: bundled when installed; when not, esbuild leaves it to fail at run time and
    // Vite substitutes a stub that throws (onnxruntime-web is an optional peer).
    return await import('onnxruntime-web');
  } catch (e) {
    throw missingDependency(e, 'onnxruntime-web', 'LocalModel');
  }
}
