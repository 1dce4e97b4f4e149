/**
 * MissingDependencyError: a feature needs one of Fedge's optional peer dependencies (TensorFlow.js for training,
 * onnxruntime-web for LocalModel and `fedge quantize`) and it is not installed. Fedge imports those packages only when
 * the feature starts, so an app that uses EdgeClient alone installs and bundles without them; this error says which
 * package to add instead of a bundler's or Node's bare "cannot find module".
 */
export class MissingDependencyError extends Error {
  override name = 'MissingDependencyError';
  /** The npm package to install, e.g. '@tensorflow/tfjs'. */
  readonly packageName: string;

  constructor(packageName: string, feature: string, options?: { cause?: unknown }) {
    super(
      `${feature} needs the optional package ${packageName}, which is not installed: npm install ${packageName}`,
      options,
    );
    this.packageName = packageName;
  }
}

/**
 * What to throw after `import(packageName)` failed with `e`: a MissingDependencyError when the package (or a file of
 * it) could not be found — Node's (ERR_)MODULE_NOT_FOUND, a browser's unresolved bare specifier, Vite's stub for a
 * missing optional peer — and `e` itself otherwise (the package is there but failed to initialise).
 */
export function missingDependency(e: unknown, packageName: string, feature: string): unknown {
  const err = e as { code?: unknown; message?: unknown } | null | undefined;
  const message = typeof err?.message === 'string' ? err.message : '';
  const notFound =
    err?.code === 'ERR_MODULE_NOT_FOUND' ||
    err?.code === 'MODULE_NOT_FOUND' ||
    message.includes(packageName) ||
    /resolve module specifier|dynamically imported module/i.test(message);
  return notFound ? new MissingDependencyError(packageName, feature, { cause: e }) : e;
}
