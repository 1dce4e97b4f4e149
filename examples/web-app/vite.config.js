// Vite for the example app. One thing beyond the defaults: onnxruntime-web's WASM binaries (ORT_WASM_FILES, one per
// build LocalModel may load) are served under /ort/ — copied into the build, and answered by the dev server.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ORT_WASM_FILES } from 'fedge/client';

const ORT_DIST = join(import.meta.dirname, 'node_modules/onnxruntime-web/dist');
const files = Object.values(ORT_WASM_FILES);

function ortWasm() {
  return {
    name: 'fedge-ort-wasm',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const file = files.find((f) => req.url === `/ort/${f}`);
        if (!file) return next();
        res.setHeader('Content-Type', 'application/wasm');
        res.end(readFileSync(join(ORT_DIST, file)));
      });
    },
    generateBundle() {
      for (const f of files)
        this.emitFile({ type: 'asset', fileName: `ort/${f}`, source: readFileSync(join(ORT_DIST, f)) });
    },
  };
}

/** @type {import('vite').UserConfig} */
export default { plugins: [ortWasm()], logLevel: 'warn', build: { target: 'es2022' } };
