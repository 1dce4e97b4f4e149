/** `fedge quantize` as a user runs it: a real process on real files (the default models, Silero VAD), its report, its tolerance, its exit codes. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { reshapeMatmulModel } from '../fixtures/onnx-models.ts';

const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'fedge-cli-'));
const fedge = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'cli/fedge.ts'), ...args], { encoding: 'utf8' });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fedge quantize', () => {
  it('writes a loadable int8 model and reports size and output deviation', async () => {
    const out = join(dir, 'mlp.int8.onnx');
    const r = fedge('quantize', join(root, 'models/mnist-mlp/model.fp32.onnx'), out, '--samples', '8');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const fp32Bytes = readFileSync(join(root, 'models/mnist-mlp/model.fp32.onnx')).byteLength;
    expect(r.stdout).toContain(
      `size      ${fp32Bytes.toLocaleString('en-US')} B → ${readFileSync(out).byteLength.toLocaleString('en-US')} B (0.2`,
    );
    expect(r.stdout).toMatch(/int8 +2 weight tensor\(s\)/);
    const dev = /deviation of output 'probabilities' on 8 generated inputs: max ([\d.e+-]+), mean ([\d.e+-]+)/.exec(
      r.stdout,
    );
    expect(dev).not.toBeNull();
    expect(Number(dev![1])).toBeLessThan(0.05);
    expect(r.stdout).toMatch(
      /deviation of output 'probabilities' .*\(largest \|output\| [\d.]+, tolerance [\d.e+-]+\)/,
    );
    expect(r.stdout).toContain(
      "tolerance 25 % of each output's largest |value| (the default tolerance for int8; set another with --max-deviation X or X%): every output within",
    );
    const session = await ort.InferenceSession.create(readFileSync(out));
    expect(session.inputNames).toEqual(['input']);
    await session.release();
  });

  it('--mode fp16: float16 weights, its own default tolerance (1 %)', () => {
    const r = fedge(
      'quantize',
      join(root, 'models/mnist-mlp/model.fp32.onnx'),
      join(dir, 'mlp.fp16.onnx'),
      '--mode',
      'fp16',
      '--samples',
      '4',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('(fp16)');
    expect(r.stdout).toMatch(/fp16 +\d+ weight tensor\(s\)/);
    expect(r.stdout).toMatch(/\(0\.5\d\d×\)/);
    expect(r.stdout).toContain("tolerance 1 % of each output's largest |value| (the default tolerance for fp16");
  });

  it('a third-party model with subgraphs (Silero VAD): --shape and --value size and fix its inputs; ≤ 0.30× within the tolerance', () => {
    const out = join(dir, 'silero.int8.onnx');
    const silero = join(root, 'test/fixtures/third-party/silero-vad.onnx');
    const r = fedge(
      'quantize',
      silero,
      out,
      '--shape',
      'input=1,512',
      '--shape',
      'h=2,1,64',
      '--shape',
      'c=2,1,64',
      '--value',
      'sr=16000',
      '--samples',
      '1',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const ratio = Number(/\(([\d.]+)×\)/.exec(r.stdout)![1]);
    expect(ratio).toBeLessThanOrEqual(0.3);
    expect(r.stdout).toMatch(/int8 +42 weight tensor\(s\) \(16 in subgraphs\)/);
    expect(r.stdout).toMatch(/kept fp32 1076: 512 float elements read as LSTM input 3: not a weight input, kept fp32/);
    expect(r.stdout).toContain('every output within');
  });

  it('dynamic mode says which nodes it kept weight-only', () => {
    const r = fedge(
      'quantize',
      join(root, 'models/mnist-mlp/model.fp32.onnx'),
      join(dir, 'dyn.onnx'),
      '--mode',
      'dynamic',
      '--samples',
      '4',
    );
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
    for (const args of [
      ['quantize', 'only-one.onnx'],
      ['quantize', 'a', 'b', '--mode', 'int4'],
      ['quantize', 'a', 'b', '--samples', '0'],
      ['quantize', 'a', 'b', '--max-deviation', 'lots'],
      ['quantize', 'a', 'b', '--max-deviation', '-1%'],
      ['frobnicate'],
    ]) {
      const r = fedge(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/usage:/);
    }
  });

  it('writes nothing when a check fails; --shape sizes open dimensions; --inputs takes real inputs', () => {
    const model = join(dir, 'reshape-matmul.onnx');
    writeFileSync(model, reshapeMatmulModel());
    const out = join(dir, 'reshape-matmul.int8.onnx');
    // The open dimension is generated as 1 and the Reshape to [1, 16] fails: the reason, the hint, no file.
    const failed = fedge('quantize', model, out);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/the fp32 model failed on the inputs: .*--shape name=/);
    expect(existsSync(out)).toBe(false);
    const sized = fedge('quantize', model, out, '--shape', 'x=1,16', '--samples', '4');
    expect(sized.stderr).toBe('');
    expect(sized.status).toBe(0);
    expect(sized.stdout).toMatch(/deviation of output 'y' on 4 generated inputs: max /);
    rmSync(out);
    const file = join(dir, 'inputs.json');
    writeFileSync(
      file,
      JSON.stringify({
        inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: Array.from({ length: 16 }, (_, i) => i / 16) }],
      }),
    );
    const given = fedge('quantize', model, out, '--inputs', file);
    expect(given.status).toBe(0);
    expect(given.stdout).toContain(`deviation of output 'y' on the inputs in ${file}: max `);
    rmSync(out);
    // A deviation above --max-deviation is a failed check: reported, and the file is not written.
    const strict = fedge('quantize', model, out, '--inputs', file, '--max-deviation', '0');
    expect(strict.status).toBe(1);
    expect(strict.stderr).toMatch(/output 'y' deviates by [\d.e+-]+, above --max-deviation 0; .* was not written/);
    expect(existsSync(out)).toBe(false);
    // X% is relative to each output's largest |value|.
    const relative = fedge('quantize', model, out, '--inputs', file, '--max-deviation', '0.0001%');
    expect(relative.status).toBe(1);
    expect(relative.stderr).toMatch(
      /above --max-deviation 0\.0001% \(0\.0001 % of its largest \|value\| [\d.]+ = [\d.e+-]+\); .* was not written/,
    );
    expect(existsSync(out)).toBe(false);
    for (const args of [
      ['--shape', 'nope=1,16'],
      ['--shape', 'x=2,16'],
      ['--shape', 'x'],
      ['--value', 'nope=1'],
      ['--value', 'x=1,2'],
      ['--value', 'x=a'],
      ['--inputs', file, '--value', 'x=1'],
    ]) {
      const r = fedge('quantize', model, out, ...args);
      expect(r.status, args.join(' ')).toBe(2);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('fedge help lists the commands', () => {
    const r = fedge('help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/commands:\n {2}quantize /);
  });

  it('fedge quantize --help prints its usage and exits 0; an unknown option is one line of error and one of usage, exit 2, no stack trace', () => {
    for (const args of [
      ['quantize', '--help'],
      ['quantize', '-h'],
      ['help', 'quantize'],
      ['quantize', 'a.onnx', 'b.onnx', '--help'],
    ]) {
      const r = fedge(...args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^usage: fedge quantize <in\.onnx> <out\.onnx>/);
      expect(r.stdout).toContain('--max-deviation');
    }
    for (const args of [['quantize', '--bogus'], ['quantize', 'a', 'b', '--mode', 'int4'], ['frobnicate']]) {
      const r = fedge(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(2);
      expect(lines[0]).toMatch(/^fedge: /);
      expect(lines[1]).toMatch(/^usage: fedge .*\((fedge quantize --help|fedge help)/);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  });

  it('npm run fedge runs the CLI from a clone, before any build (package.json: node cli/fedge.ts)', () => {
    const scripts = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts.fedge).toBe('node cli/fedge.ts');
  });
});
