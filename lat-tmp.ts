import { runLoad } from './bench/load.ts';
import { loadMnist } from './models/data/mnist.ts';
const { test } = loadMnist();
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(test.x.subarray(0, 784)) }] });
const url = process.argv[2];
for (const [c, n] of [[1, 1000], [32, 3000]]) {
  const r = await runLoad(`${url}/v2/models/mnist-mlp/infer`, body, { connections: c, requests: n, warmup: 200 });
  console.log(c, r.p50.toFixed(2), r.p95.toFixed(2), r.rps.toFixed(0));
}
const r = await runLoad(`${url}/v2/health/live`, '', { connections: 1, requests: 1000, warmup: 100, method: 'GET' } as any).catch(e => String(e));
console.log('live', r);
