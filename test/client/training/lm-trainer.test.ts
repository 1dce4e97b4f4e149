/**
 * LanguageModelTrainer (client-sdk/training/lm-trainer.ts) on tfjs's WASM backend: its forward pass (LoRA adapters
 * included) gives the exported ONNX graph's logits, training lowers the loss for lora / last / all, DP-SGD clips each
 * sequence's gradient as a whole and is accounted and charged, the LoRA update is the B's in loraTargets order and
 * mergeLora of it is the trainer's merged weights, and no tensors leak across steps.
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanguageModelTrainer } from '../../../client-sdk/training/lm-trainer.ts';
import { TrainerError } from '../../../client-sdk/training/dp-sgd.ts';
import { useNodeWasm } from '../../../client-sdk/training/node-backend.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../../../client-sdk/privacy/ledger.ts';
import { DEFAULT_ORDERS, computeRdp, rdpToEpsilon } from '../../../federated/dp/rdp.ts';
import { tokenBatch } from '../../../federated/model/decoder-batch.ts';
import { exportDecoderOnnx } from '../../../federated/model/decoder-export.ts';
import { decoderForward } from '../../../federated/model/decoder-tfjs.ts';
import { loraTargets, mergeLora } from '../../../federated/model/lora.ts';
import { maxAbsDiff, runStep, tinyDecoder as spec, tinyDecoderWeights } from '../../fixtures/tiny-decoder.ts';

const base = tinyDecoderWeights();
/** A small repetitive "text": 12 windows of a 7-token cycle, of 15 to 17 tokens (so batches pad). */
const text = Array.from({ length: 12 }, (_, i) => Array.from({ length: 17 - (i % 3) }, (_, t) => 3 + ((i + t) % 7)));
const IDS = [
  [1, 17, 42, 8, 96, 3, 55, 23, 0, 71],
  [5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
];
const trainers: LanguageModelTrainer[] = [];
const create = async (trainable: Parameters<typeof LanguageModelTrainer.create>[0]['trainable'], seed = 7) => {
  const t = await LanguageModelTrainer.create({ spec, weights: base, trainable, lora: { seed }, backend: 'wasm' });
  trainers.push(t);
  return t;
};
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

async function onnxLogits(weights: typeof base, ids: number[][]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(exportDecoderOnnx(spec, weights));
  try {
    const mask = ids.map((r) => r.map(() => 1));
    const positions = ids.map((r) => r.map((_, i) => i));
    return (await runStep(session, spec, ids, mask, positions)).logits;
  } finally {
    await session.release();
  }
}

beforeAll(() => useNodeWasm());
afterAll(() => {
  for (const t of trainers) t.dispose();
});

describe('LanguageModelTrainer', () => {
  it('with B = 0 its LoRA forward gives the ONNX model’s logits, and after training the merged weights’ ONNX logits', async () => {
    const t = await create('lora:4');
    expect(t.backend).toBe('wasm');
    const atStart = maxAbsDiff(t.logits(IDS), await onnxLogits(base, IDS));
    expect(atStart).toBeLessThan(1e-4);
    await t.fit(text, { epochs: 2, batchSize: 4, learningRate: 0.02, optimizer: 'adam' });
    expect(norm(t.update())).toBeGreaterThan(0.01);
    // x·W + (α/r)·(x·A)·B in training = x·(W + (α/r)·A·B) in the served graph.
    const trained = maxAbsDiff(t.logits(IDS), await onnxLogits(t.weights(), IDS));
    expect(trained).toBeLessThan(1e-4);
    console.log(
      `lm-trainer parity, max |ONNX - tfjs LoRA|: B=0 ${atStart.toExponential(2)}, trained ${trained.toExponential(2)}`,
    );
  });

  it('its hand-written GELU and cross-entropy gradients are autodiff’s through decoderForward', async () => {
    const t = await create('all');
    const seq = text[1]!;
    const ours = t.clippedGradientSum([seq], Number.POSITIVE_INFINITY).sum;
    // Reference: tfjs autodiff through decoder-tfjs.ts's forward and logSoftmax, mean over the 15 positions.
    const vars = base.map((w) => tf.variable(tf.tensor(w.values, w.shape)));
    const params = Object.fromEntries(base.map((w, i) => [w.name, vars[i]!]));
    const tokens = tokenBatch(spec, [seq.slice(0, -1)]);
    const { grads, value } = tf.variableGrads(() => {
      const logits = decoderForward(tf, spec, params, tokens, { embedding: 'one-hot-matmul' });
      const logp = tf.logSoftmax(logits.reshape([seq.length - 1, spec.vocabSize]));
      const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(seq.slice(1), 'int32'), spec.vocabSize)), 1);
      return tf.neg(tf.mean(picked)) as tf.Scalar;
    }, vars);
    const reference = new Float32Array(ours.length);
    let offset = 0;
    for (const v of vars) {
      reference.set(grads[v.name]!.dataSync(), offset);
      offset += v.size;
    }
    expect(maxAbsDiff(ours, reference)).toBeLessThan(1e-5);
    expect(norm(reference)).toBeGreaterThan(0.1);
    tf.dispose([...vars, value, ...Object.values(grads)]);
  });

  it('checkpointing (recomputing each block in the backward pass) gives the same gradients as keeping the tape', async () => {
    for (const trainable of ['lora:4', 'last:1', 'all'] as const) {
      const [on, off] = await Promise.all(
        [true, false].map((checkpoint) =>
          LanguageModelTrainer.create({ spec, weights: base, trainable, backend: 'wasm', checkpoint }),
        ),
      );
      trainers.push(on!, off!);
      expect([on!.checkpoint, off!.checkpoint]).toEqual([true, false]);
      const a = on!.clippedGradientSum(text.slice(0, 3), Number.POSITIVE_INFINITY);
      const b = off!.clippedGradientSum(text.slice(0, 3), Number.POSITIVE_INFINITY);
      expect(norm(b.sum), trainable).toBeGreaterThan(0.01);
      expect(maxAbsDiff(a.sum, b.sum), trainable).toBeLessThan(1e-6);
    }
  });

  it('micro-batches give the same step: plain, and DP’s clipped sums', async () => {
    const updates = [];
    for (const microBatch of [1, 3, 8]) {
      const t = await create('lora:4');
      await t.fit(text.slice(0, 8), { epochs: 1, batchSize: 8, learningRate: 0.5, microBatch });
      updates.push(t.update());
    }
    expect(norm(updates[0]!)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(updates[0]!, updates[2]!)).toBeLessThan(1e-6);
    expect(maxAbsDiff(updates[1]!, updates[2]!)).toBeLessThan(1e-6);
    const t = await create('lora:4');
    const whole = t.clippedGradientSum(text.slice(0, 5), 0.05);
    const parts = t.clippedGradientSum(text.slice(0, 5), 0.05, 2);
    expect(maxAbsDiff(whole.sum, parts.sum)).toBeLessThan(1e-6);
    expect(maxAbsDiff(whole.norms, parts.norms)).toBeLessThan(1e-6);
    await expect(t.fit(text, { epochs: 1, batchSize: 4, learningRate: 0.1, microBatch: 0 })).rejects.toThrow(
      /microBatch/,
    );
  });

  it('lowers the loss on a small repetitive text for lora, last and all', async () => {
    for (const trainable of ['lora:4', 'last:1', 'all'] as const) {
      const t = await create(trainable);
      const before = t.evaluate(text);
      const r = await t.fit(text, { epochs: 4, batchSize: 4, learningRate: 0.01, optimizer: 'adam' });
      const after = t.evaluate(text);
      expect(r.steps).toBe(12);
      expect(r.sequences).toBe(48);
      expect(after.tokens).toBe(text.reduce((n, s) => n + s.length - 1, 0));
      expect(after.perplexity, trainable).toBeLessThan(before.perplexity / 2);
      expect(after.top1, trainable).toBeGreaterThan(before.top1);
    }
  });

  it('trains only what it says: lora the B’s, last:1 the last block and ln_f, all everything', async () => {
    const lora = await create('lora:2');
    expect(lora.trainableCount).toBe(loraTargets(spec, 2).length);
    const last = await create('last:1');
    expect(last.updateLayout.map((l) => l.name)).toEqual([
      ...base.filter((w) => w.name.startsWith('h.1.')).map((w) => w.name),
      'ln_f.weight',
      'ln_f.bias',
    ]);
    await last.fit(text, { epochs: 1, batchSize: 6, learningRate: 0.01, optimizer: 'adam' });
    const w = last.weights();
    for (const [i, weight] of w.entries()) {
      const trained = weight.name.startsWith('h.1.') || weight.name.startsWith('ln_f.');
      expect(maxAbsDiff(weight.values, base[i]!.values) > 0, weight.name).toBe(trained);
    }
    const all = await create('all');
    expect(all.trainableCount).toBe(base.reduce((n, w) => n + w.values.length, 0));
    await expect(create('lora:0' as 'lora:1')).rejects.toThrow(TrainerError);
    await expect(create('last:3')).rejects.toThrow(/1\.\.2/);
    await expect(create('first:1' as 'all')).rejects.toThrow(/lora:<rank>/);
    expect(() => lora.evaluate([[1]])).toThrow(/2 to 33/);
  });

  it('DP-SGD clips each sequence’s gradient as a whole: per sequence, in a padded batch, and in a step', async () => {
    const C = 0.05;
    for (const trainable of ['lora:4', 'last:1'] as const) {
      const t = await create(trainable);
      const singles = text.slice(0, 4).map((s) => t.clippedGradientSum([s], C));
      for (const s of singles) {
        expect(s.norms[0]).toBeGreaterThan(C); // so clipping is active
        expect(norm(s.sum)).toBeCloseTo(C, 5);
      }
      // A batch of sequences of different lengths: each one's norm and clipped gradient as if alone.
      const batch = t.clippedGradientSum(text.slice(0, 4), C);
      expect(batch.norms.map((n, i) => n / singles[i]!.norms[0]!)).toEqual(batch.norms.map(() => expect.closeTo(1, 4)));
      const summed = singles[0]!.sum.map((_, j) => singles.reduce((a, s) => a + s.sum[j]!, 0));
      expect(maxAbsDiff(batch.sum, summed)).toBeLessThan(1e-6);
      expect(norm(batch.sum)).toBeLessThanOrEqual(4 * C * (1 + 1e-6));
    }
    // One step end to end: one sequence, q = 1, a huge learning rate, negligible noise — the update is lr × clipped.
    const t = await create('lora:4');
    const lr = 1000;
    await t.fit([text[0]!], {
      epochs: 1,
      batchSize: 1,
      learningRate: lr,
      privacy: { l2NormClip: C, noiseMultiplier: 1e-9, delta: 1e-5 },
    });
    expect(norm(t.update()) / lr).toBeLessThanOrEqual(C * (1 + 1e-4));
    expect(norm(t.update()) / lr).toBeGreaterThan(C * (1 - 1e-4));
  });

  it('the LoRA update is every B in loraTargets order, and mergeLora of it gives weights()', async () => {
    const t = await create('lora:4', 1234);
    await t.fit(text, { epochs: 1, batchSize: 4, learningRate: 0.02, optimizer: 'adam' });
    const update = t.update();
    const { length, targets } = loraTargets(spec, 4);
    expect(update.length).toBe(length);
    expect(t.updateLayout.map((l) => l.name)).toEqual(targets.map((x) => x.name));
    expect(t.lora).toEqual({ rank: 4, alpha: 4, seed: 1234 });
    const merged = mergeLora(spec, new Map(base.map((w) => [w.name, w.values])), t.lora!, update);
    const weights = t.weights();
    expect(weights.map((w) => w.name)).toEqual(base.map((w) => w.name));
    for (const w of weights) {
      const expected = merged.get(w.name) ?? base.find((b) => b.name === w.name)!.values;
      expect(maxAbsDiff(w.values, expected), w.name).toBeLessThan(1e-6);
    }
    // A different public seed is a different A: the same B would merge to other weights.
    const other = mergeLora(spec, new Map(base.map((w) => [w.name, w.values])), { ...t.lora!, seed: 1 }, update);
    expect(maxAbsDiff(other.get(targets[0]!.name)!, merged.get(targets[0]!.name)!)).toBeGreaterThan(1e-4);
    // last/all: the update is the trained weights' change.
    const last = await create('last:1');
    await last.fit(text, { epochs: 1, batchSize: 4, learningRate: 0.01, optimizer: 'adam' });
    const delta = last.update();
    const lnfBias = last.weights().at(-1)!.values;
    const baseBias = base.at(-1)!.values;
    expect(
      maxAbsDiff(
        delta.subarray(delta.length - baseBias.length),
        lnfBias.map((v, i) => v - baseBias[i]!),
      ),
    ).toBe(0);
  });

  it('keeps tf.memory().numTensors flat across steps, plain and private, and frees everything on dispose', async () => {
    const before = tf.memory().numTensors;
    for (const trainable of ['lora:4', 'last:1', 'all'] as const) {
      const t = await LanguageModelTrainer.create({ spec, weights: base, trainable, backend: 'wasm' });
      const held = tf.memory().numTensors;
      for (const privacy of [undefined, { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5 }]) {
        const counts: number[] = [];
        await t.fit(text.slice(0, 10), {
          epochs: 1,
          batchSize: 2,
          learningRate: 0.01,
          optimizer: 'adam',
          privacy,
          onProgress: () => counts.push(tf.memory().numTensors),
        });
        expect(counts.length).toBe(5);
        expect(new Set(counts).size, `${trainable} ${privacy ? 'DP' : 'plain'}: ${counts}`).toBe(1);
        expect(tf.memory().numTensors).toBe(held);
      }
      t.evaluate(text);
      t.update();
      t.weights();
      t.logits(IDS);
      t.clippedGradientSum(text.slice(0, 3), 1);
      expect(tf.memory().numTensors).toBe(held);
      t.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(() => t.update()).toThrow(/disposed/);
    }
  });

  it('DP-SGD: reports ε for its Poisson sampling, charges the ledger, or holds the charge when asked', async () => {
    const ledger = new PrivacyLedger(new MemoryLedgerStore(), { epsilon: 50, delta: 1e-5 });
    const t = await create('lora:4');
    const r = await t.fit(text, {
      epochs: 2,
      batchSize: 3,
      learningRate: 0.01,
      privacy: { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5, ledger, source: 'notes' },
    });
    expect(r.steps).toBe(8); // N/B = 4 Poisson draws per epoch
    const expected = rdpToEpsilon(DEFAULT_ORDERS, computeRdp(3 / 12, 1.1, 8, DEFAULT_ORDERS), 1e-5).epsilon;
    expect(r.epsilon).toBeCloseTo(expected, 10);
    expect(r.noiseMultiplier).toBe(1.1);
    expect(r.budget!.spent).toBeCloseTo(r.epsilon!, 6);
    expect(await ledger.spent('notes')).toBeCloseTo(r.epsilon!, 6);
    // Target ε: σ derived for this run.
    const byTarget = await t.fit(text, {
      epochs: 1,
      batchSize: 3,
      learningRate: 0.01,
      privacy: { l2NormClip: 1, epsilon: 3, delta: 1e-5, ledger, source: 'other', reserve: true },
    });
    expect(byTarget.epsilon).toBeLessThanOrEqual(3);
    expect(byTarget.epsilon).toBeGreaterThan(2.9);
    expect(byTarget.reservation).toBeDefined();
    expect(await ledger.spent('other')).toBeCloseTo(byTarget.epsilon!, 6);
    await byTarget.reservation!.release();
    expect(await ledger.spent('other')).toBe(0);
  });
});
