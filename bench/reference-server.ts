/**
 * The benchmark's reference: the same OIP v2 JSON inference route on Hono + @hono/node-server with
 * onnxruntime-node (native CPU, one intra-op thread), serving the same model file.
 *   node bench/reference-server.ts <model.onnx> <port>
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [file, port] = [process.argv[2]!, Number(process.argv[3] ?? 8790)];
// Same session options as the edge (functions/inference/ort-runtime.ts), so the int8 weights are dequantized
// once at load on both sides.
const session = await ort.InferenceSession.create(readFileSync(file), {
  intraOpNumThreads: 1, interOpNumThreads: 1, executionProviders: ['cpu'], graphOptimizationLevel: 'all',
  extra: { session: { disable_quant_qdq: '1' } },
});
// Warm the session as the edge's readiness check does, so "first inference after ready" compares like with like.
const warm = session.inputMetadata[0] as unknown as { name: string; shape: readonly (number | string)[] };
await session.run({ [warm.name]: new ort.Tensor('float32', new Float32Array(warm.shape.slice(1).reduce<number>((a, d) => a * Number(d), 1)), [1, ...warm.shape.slice(1).map(Number)]) });

const app = new Hono()
  .get('/v2/health/ready', (c) => c.json({ ready: true }))
  .post('/v2/models/:name/infer', async (c) => {
    const req = (await c.req.json()) as { id?: string; inputs: { name: string; shape: number[]; data: number[] }[] };
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of req.inputs) feeds[i.name] = new ort.Tensor('float32', Float32Array.from(i.data.flat(Infinity as 1) as number[]), i.shape);
    const out = await session.run(feeds);
    return c.json({
      model_name: c.req.param('name'), model_version: '1', ...(req.id ? { id: req.id } : {}),
      outputs: Object.entries(out).map(([name, t]) => ({ name, datatype: 'FP32', shape: t.dims, data: Array.from(t.data as Float32Array) })),
    });
  });

serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => console.log(`reference ready on ${port}`));
