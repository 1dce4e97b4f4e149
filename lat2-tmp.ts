import { Agent, request } from 'undici';
const agent = new Agent({ connections: 1 });
for (const path of process.argv.slice(3)) {
  const ls: number[] = [];
  for (let i = 0; i < 600; i++) { const t = performance.now(); const r = await request(process.argv[2] + path, { dispatcher: agent }); await r.body.arrayBuffer(); if (i >= 100) ls.push(performance.now() - t); }
  ls.sort((a, b) => a - b); console.log(path, ls[250].toFixed(2));
}
