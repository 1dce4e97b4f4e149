import { Agent, request } from 'undici';
import { loadMnist } from './models/data/mnist.ts';
const { test } = loadMnist();
const x = new Float32Array(test.x.subarray(0, 784));
const header = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 3136 } }], parameters: { binary_data_output: true } }));
const body = Buffer.concat([header, Buffer.from(x.buffer)]);
const agent = new Agent({ connections: 1 });
const ls: number[] = [];
for (let i = 0; i < 1200; i++) { const t = performance.now(); const r = await request(process.argv[2] + '/v2/models/mnist-mlp/infer', { method: 'POST', body, headers: { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' }, dispatcher: agent }); await r.body.arrayBuffer(); if (r.statusCode !== 200) throw new Error(String(r.statusCode)); if (i >= 200) ls.push(performance.now() - t); }
ls.sort((a, b) => a - b); console.log('binary p50', ls[500].toFixed(2));
