/**
 * What `npm run deploy` would upload: `wrangler deploy --dry-run` builds the Worker with every binding wrangler.toml
 * declares, and the compressed bundle fits the Workers Paid plan's 10 MB (it is over the Free plan's 3 MB: the ORT
 * WebAssembly runtime alone is ~3.6 MB gzipped). Nothing is sent anywhere: --dry-run stops before uploading.
 * It runs with a copy of wrangler.toml without the [build] step: that step rewrites web/dist, the assets every
 * wrangler dev of the other test files is serving at the same time, and reloading them mid-request made a
 * browser test's round fail on 500s (npm test has just built web/dist).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const out = mkdtempSync(join(tmpdir(), 'fedge-deploy-'));
// Beside wrangler.toml, so its relative paths (main, assets, rules) mean the same.
const config = join(root, `.wrangler-dry-run-${process.pid}.toml`);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(config, { force: true });
});

describe('wrangler deploy --dry-run', () => {
  it('builds the Worker with its bindings, within the Workers Paid size limit', () => {
    const wrangler = join(root, 'node_modules/wrangler/bin/wrangler.js');
    const toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
    const withoutBuild = toml.replace(/^\[build\]\n(?:[^[\n].*\n|\n)*?(?=\[|#)/m, '');
    expect(withoutBuild).not.toMatch(/^\[build\]/m);
    writeFileSync(config, withoutBuild);
    const r = spawnSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--config', config, '--outdir', out], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    });
    expect(r.status, r.stderr).toBe(0);
    for (const binding of [
      'MODEL_CATALOG',
      'FEDERATED_TASK',
      'TASK_DIRECTORY',
      'MODEL_BLOBS',
      'RATE_LIMITER',
      'ADMIN_AUTH_LIMITER',
    ])
      expect(r.stdout).toContain(`env.${binding}`);
    const gzip = readdirSync(out)
      .filter((f) => !f.endsWith('.map') && f !== 'README.md')
      .reduce((n, f) => n + gzipSync(readFileSync(join(out, f))).byteLength, 0);
    expect(gzip).toBeLessThan(10 * 1000 * 1000);
    const reported = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(r.stdout);
    expect(reported).not.toBeNull();
    expect(Number(reported![2]) * 1024).toBeLessThan(10 * 1000 * 1000);
  });
});
