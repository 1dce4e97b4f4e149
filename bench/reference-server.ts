/**
 * The benchmark's references: the same OIP v2 JSON inference route on Hono + @hono/node-server, serving the same
 * model files, one thread, with one of two runtimes:
 *   node — onnxruntime-node (native CPU): what the model costs on the metal;
 *   web  — onnxruntime-web in Node (the same WASM SIMD build the edge runs in workerd): what it costs in WASM.
 * The edge vs `web` is the platform's cost (workerd, routes, codec); `web` vs `node` is the runtime's.
 *   node bench/reference-server.ts <node|web> <port> <name>=<model.onnx> …
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { readFileSync } from 'node:fs';
import type * as OrtNode from 'onnxruntime-node';

const [runtime, port, ...models] = process.argv.slice(2);
if ((runtime !== 'node' && runtime !== 'web') || !port || !models.length)
  throw new Error('usage: node bench/reference-server.ts <node|web> <port> <name>=<model.onnx> …');
// Both packages have the same API (onnxruntime-common); onnxruntime-web in Node is its WASM backend.
const ort = (runtime === 'node'
  ? await import('onnxruntime-node')
  : await import('onnxruntime-web')) as unknown as typeof OrtNode;
if (runtime === 'web') {
  const env = ort.env as unknown as { wasm: { numThreads: number; simd?: boolean; proxy: boolean } };
  env.wasm.numThreads = 1;
  env.wasm.proxy = false;
}

// Same session options as the edge (functions/inference/ort-runtime.ts), so int8 weights are dequantized once at
// load on every side.
const sessions = new Map<string, OrtNode.InferenceSession>();
for (const m of models) {
  const [name, file] = [m.slice(0, m.indexOf('=')), m.slice(m.indexOf('=') + 1)];
  const session = await ort.InferenceSession.create(readFileSync(file), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionProviders: [runtime === 'node' ? 'cpu' : 'wasm'],
    graphOptimizationLevel: 'all',
    extra: { session: { disable_quant_qdq: '1' } },
  });
  // Warm the session as the edge's readiness check does, so "first inference after ready" compares like with like.
  const warm = session.inputMetadata[0] as unknown as { name: string; shape: readonly (number | string)[] };
  const dims = warm.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  await session.run({
    [warm.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, d) => a * d, 1)), [1, ...dims]),
  });
  sessions.set(name, session);
}

const app = new Hono()
  .get('/v2/health/ready', (c) => c.json({ ready: true }))
  .post('/v2/models/:name/infer', async (c) => {
    const session = sessions.get(c.req.param('name'));
    if (!session) return c.json({ error: 'no such model' }, 404);
    const req = (await c.req.json()) as { id?: string; inputs: { name: string; shape: number[]; data: number[] }[] };
    const feeds: Record<string, OrtNode.Tensor> = {};
    for (const i of req.inputs)
      feeds[i.name] = new ort.Tensor('float32', Float32Array.from(i.data.flat(Infinity as 1) as number[]), i.shape);
    const out = await session.run(feeds);
    return c.json({
      model_name: c.req.param('name'),
      model_version: '1',
      ...(req.id ? { id: req.id } : {}),
      outputs: Object.entries(out).map(([name, t]) => ({
        name,
        datatype: 'FP32',
        shape: t.dims,
        data: Array.from(t.data as Float32Array),
      })),
    });
  });

serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(port) }, () =>
  console.log(`reference (${runtime}) ready on ${port}`),
);
