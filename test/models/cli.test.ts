/** `fedge quantize` as a user runs it: a real process on real files, its report, its exit codes. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'fedge-cli-'));
const fedge = (...args: string[]) => spawnSync(process.execPath, [join(root, 'cli/fedge.ts'), ...args], { encoding: 'utf8' });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fedge quantize', () => {
  it('writes a loadable int8 model and reports size and output deviation', async () => {
    const out = join(dir, 'mlp.int8.onnx');
    const r = fedge('quantize', join(root, 'models/mnist-mlp/model.fp32.onnx'), out, '--samples', '8');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const fp32Bytes = readFileSync(join(root, 'models/mnist-mlp/model.fp32.onnx')).byteLength;
    expect(r.stdout).toContain(`size      ${fp32Bytes.toLocaleString('en-US')} B → ${readFileSync(out).byteLength.toLocaleString('en-US')} B (0.2`);
    expect(r.stdout).toMatch(/int8 +2 weight tensor\(s\)/);
    const dev = /deviation probabilities on 8 generated inputs: max ([\d.e+-]+), mean ([\d.e+-]+)/.exec(r.stdout);
    expect(dev).not.toBeNull();
    expect(Number(dev![1])).toBeLessThan(0.05);
    const session = await ort.InferenceSession.create(readFileSync(out));
    expect(session.inputNames).toEqual(['input']);
    await session.release();
  });

  it('dynamic mode says which nodes it kept weight-only', () => {
    const r = fedge('quantize', join(root, 'models/mnist-mlp/model.fp32.onnx'), join(dir, 'dyn.onnx'), '--mode', 'dynamic', '--samples', '4');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('(dynamic)');
  });

  it('bad input: exit 1 with the reason, nothing written; bad usage: exit 2 with the usage', () => {
    writeFileSync(join(dir, 'text.onnx'), 'not a model');
    const corrupt = fedge('quantize', join(dir, 'text.onnx'), join(dir, 'never.onnx'));
    expect(corrupt.status).toBe(1);
    expect(corrupt.stderr).toMatch(/fedge: not an ONNX model/);
    expect(existsSync(join(dir, 'never.onnx'))).toBe(false);
    const missing = fedge('quantize', join(dir, 'absent.onnx'), join(dir, 'never.onnx'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*absent\.onnx: ENOENT/);
    for (const args of [['quantize', 'only-one.onnx'], ['quantize', 'a', 'b', '--mode', 'int4'], ['quantize', 'a', 'b', '--samples', '0'], ['frobnicate']]) {
      const r = fedge(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/usage:/);
    }
  });
});
