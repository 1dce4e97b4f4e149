/**
 * Tasks on a served language model's LoRA adapters (issue 33, the server side): created on the bundled fedge-gpt with
 * `trainable: "lora:4"`, they say their adapters (rank, alpha, public seed, targets, update length) to devices and
 * operators; a round's mean B — three devices through real SecAgg+ — becomes the task's weights, and the version the
 * round publishes is the base + (α/r)·A·B within int8 rounding, same graph and tokenizer, served at once by the
 * generate route; a second round accumulates. Bodies a task cannot run on are refused with the reason.
 */
import { SELF, env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { f32, toBase64 } from '../../../federated/bytes.ts';
import { readDecoderWeights } from '../../../federated/model/decoder-weights.ts';
import { loraA, loraTargets } from '../../../federated/model/lora.ts';
import { decodeModel } from '../../../federated/model/onnx-graph.ts';
import { readMetadataProps } from '../../../federated/model/onnx-metadata.ts';
import { encodeUpdate } from '../../../federated/secagg/fixed-point.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import type { RoundInfo, TaskStatus } from '../../../federated/aggregation/task-protocol.ts';
import { lastBlockWeights, loraSeed } from '../../../federated/aggregation/task-adapter.ts';
import { getBlob } from '../../../functions/registry/blob-store.ts';
import fedgeGpt from '../../../models/fedge-gpt/model.int8.onnx';
import thirdPartyDecoder from '../../fixtures/third-party/pt-gpt-tiny/model.onnx';
import { SecAggDevice } from '../../drivers/secagg-device.ts';
import { uniqueName, uploadOk } from '../helpers.ts';
import { TOKEN, edge, expectError, post } from './fixtures.ts';

const BASE = { model: 'fedge-gpt', version: '1' };
const RANK = 4;
const base = new Uint8Array(fedgeGpt);
const { spec } = readDecoderWeights(base);
const { targets, length: D } = loraTargets(spec, RANK);

/** An adapter task on fedge-gpt: 3 devices a round, k = 2, t = 2. */
const lmBody = (task: string, over: Record<string, unknown> = {}) => ({
  task,
  model: task,
  base: BASE,
  trainable: `lora:${RANK}`,
  rounds: 2,
  devicesPerRound: 3,
  minDevices: 3,
  secagg: { neighbours: 2, threshold: 2 },
  stageSeconds: 600,
  update: { clip: 1, maxExamples: 10 },
  enrollmentToken: TOKEN,
  ...over,
});

/** Device i's B: uniform ±0.1, from its own seed. */
const deviceB = (round: number, i: number) => {
  const r = seededRandom(1000 * round + i);
  return new Float32Array(D).map(() => (2 * r() - 1) * 0.1);
};

/** One round of 3 devices sending `bs` (10 examples each, so equal weights) through SecAgg+ to the published version. */
async function runRound(task: string, round: number, bs: Float32Array[]) {
  const devices = await Promise.all(bs.map((_, i) => SecAggDevice.enrolled(edge, task, `r${round}-lm-${i}`, TOKEN)));
  for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
  for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
  const info = await devices[0]!.info();
  for (const [i, d] of devices.entries())
    expect((await d.send(await d.masked(encodeUpdate(bs[i]!, 10, info.fixedPoint)))).status).toBe(202);
  const unmasks = await Promise.all(devices.map((d) => d.unmask()));
  for (const [i, d] of devices.entries()) expect((await d.send(unmasks[i]!)).status).toBe(202);
}

const status = async (task: string) => (await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as TaskStatus;
const taskWeights = async (task: string) =>
  f32(new Uint8Array(await (await SELF.fetch(`http://edge/v1/tasks/${task}/weights`)).arrayBuffer()));
const publishedBytes = async (model: string, version: string) =>
  getBlob(env.MODEL_BLOBS, (await env.MODEL_CATALOG.getByName('global').resolve(model, version))!.sha256);

/**
 * The largest |published − (base + (α/r)·A·B)| of every adapted weight, in units of its output channel's int8 step
 * (the published file's scale): within 0.5 when the merge is right and quantized once.
 */
function mergeError(published: Uint8Array, b: Float32Array, lora: { rank: number; alpha: number; seed: number }) {
  const was = new Map(readDecoderWeights(base).weights.map((w) => [w.name, w.values]));
  const now = new Map(readDecoderWeights(published).weights.map((w) => [w.name, w.values]));
  const inits = new Map(decodeModel(published).graph!.initializer!.map((t) => [t.name!, t]));
  const scale = lora.alpha / lora.rank;
  let worst = 0,
    moved = 0;
  targets.forEach((t, index) => {
    const a = loraA(t, index, lora);
    const w = was.get(t.name)!,
      p = now.get(t.name)!;
    const scales = f32(inits.get(`${t.name}_scale`)!.rawData!.slice());
    for (let i = 0; i < t.inputs; i++)
      for (let j = 0; j < t.outputs; j++) {
        let delta = 0;
        for (let k = 0; k < lora.rank; k++) delta += a[i * lora.rank + k]! * b[t.offset + k * t.outputs + j]!;
        const expected = w[i * t.outputs + j]! + scale * delta;
        worst = Math.max(worst, Math.abs(p[i * t.outputs + j]! - expected) / scales[j]!);
        moved = Math.max(moved, Math.abs(scale * delta));
      }
  });
  // Nothing but the adapted weights changed.
  for (const [name, v] of was) if (!targets.some((t) => t.name === name)) expect(now.get(name)).toEqual(v);
  return { worst, moved };
}

describe('a task on a served language model’s LoRA adapters', () => {
  it('says its adapters; a round publishes base + (α/r)·A·mean(B), which generate serves; the next round accumulates', async () => {
    const task = uniqueName('lm-lora');
    const created = await post('/v1/tasks', lmBody(task));
    expect(created.status, await created.clone().text()).toBe(201);
    const seed = await loraSeed(task, (await env.MODEL_CATALOG.getByName('global').resolve('fedge-gpt', '1'))!.sha256);
    const adapter = {
      model: 'fedge-gpt',
      version: '1',
      trainable: 'lora:4',
      lora: { rank: 4, alpha: 4, seed },
      targets: 16,
      length: D,
    };
    expect(((await created.json()) as { settings: unknown }).settings).toMatchObject({ adapter, spec });
    // A retried create is the same task (the seed is derived, not drawn).
    expect((await post('/v1/tasks', lmBody(task))).status).toBe(200);
    const info = (await (await SELF.fetch(`http://edge/v1/tasks/${task}/round`)).json()) as RoundInfo;
    expect(info).toMatchObject({ adapter, spec: { kind: 'decoder', name: spec.name } });
    expect(await status(task)).toMatchObject({
      adapter: { trainable: 'lora:4', lora: adapter.lora, targets: 16, length: D },
      base: { model: 'fedge-gpt', version: '1', trainable: 'lora:4', layers: targets.map((t) => t.name) },
    });
    const start = await taskWeights(task);
    expect(start.length).toBe(D);
    expect(start.every((v) => v === 0)).toBe(true);

    const bs = [0, 1, 2].map((i) => deviceB(1, i));
    await runRound(task, 1, bs);
    expect((await status(task)).history[0]).toMatchObject({ status: 'published', version: 'r1' });
    // The task's weights are the mean B (fixed point's rounding aside) …
    const b1 = await taskWeights(task);
    const mean = new Float32Array(D).map((_, j) => (bs[0]![j]! + bs[1]![j]! + bs[2]![j]!) / 3);
    let fixedPointError = 0;
    b1.forEach((v, j) => (fixedPointError = Math.max(fixedPointError, Math.abs(v - mean[j]!))));
    expect(fixedPointError).toBeLessThan(1e-4);
    // … and r1 is the base with them merged: within half an int8 step of every adapted weight, the rest unchanged.
    const r1 = await publishedBytes(task, 'r1');
    const e1 = mergeError(r1, b1, adapter.lora);
    console.log(
      `r1: largest merged ΔW ${e1.moved.toFixed(4)}, largest error ${e1.worst.toFixed(3)} int8 steps; fixed point ${fixedPointError.toExponential(1)}`,
    );
    expect(e1.moved).toBeGreaterThan(0.005);
    expect(e1.worst).toBeLessThanOrEqual(0.5 + 1e-3);
    // Against mean(B) itself (not the decoded mean), a hair more.
    expect(mergeError(r1, mean, adapter.lora).worst).toBeLessThan(0.52);
    // Same graph, I/O and tokenizer: only the adapted weights' int8 data and scales differ.
    expect(r1.byteLength).toBe(base.byteLength);
    expect(readMetadataProps(r1)).toEqual(readMetadataProps(base));
    const g0 = decodeModel(base).graph!,
      g1 = decodeModel(r1).graph!;
    expect(JSON.stringify([g1.node, g1.input, g1.output])).toBe(JSON.stringify([g0.node, g0.input, g0.output]));

    // Served at once: the generate route answers on r1 and on the task's alias.
    const gen = await post(`/v2/models/${task}/versions/r1/generate`, {
      text_input: 'The whale',
      parameters: { max_tokens: 8, temperature: 0 },
    });
    expect(gen.status, await gen.clone().text()).toBe(200);
    expect((await gen.json()) as Record<string, unknown>).toMatchObject({
      model_name: task,
      model_version: 'r1',
      text_output: expect.any(String),
    });
    const viaAlias = await post(`/v2/models/${task}/versions/federated/generate`, {
      text_input: 'The whale',
      parameters: { max_tokens: 4, temperature: 0 },
    });
    expect(viaAlias.status).toBe(200);

    // Round 2 accumulates: B = B₁ + mean(B₂), merged into the base (not into r1's int8 weights).
    const bs2 = [0, 1, 2].map((i) => deviceB(2, i));
    await runRound(task, 2, bs2);
    const s = await status(task);
    expect(s).toMatchObject({ status: 'finished', publishedVersions: ['r1', 'r2'] });
    const b2 = await taskWeights(task);
    b2.forEach((v, j) =>
      expect(Math.abs(v - (b1[j]! + (bs2[0]![j]! + bs2[1]![j]! + bs2[2]![j]!) / 3))).toBeLessThan(1e-4),
    );
    expect(mergeError(await publishedBytes(task, 'r2'), b2, adapter.lora).worst).toBeLessThanOrEqual(0.5 + 1e-3);
  });

  it('pins its base and takes alpha from the body', async () => {
    const task = uniqueName('lm-alpha');
    const res = await post('/v1/tasks', lmBody(task, { trainable: 'lora:2', lora: { alpha: 1 } }));
    expect(res.status, await res.clone().text()).toBe(201);
    const { settings } = (await res.json()) as { settings: { adapter: { lora: unknown; length: number } } };
    expect(settings.adapter).toMatchObject({ lora: { rank: 2, alpha: 1 }, length: loraTargets(spec, 2).length });
    const models = (await (await SELF.fetch('http://edge/v2/models')).json()) as {
      models: { name: string; aliases: Record<string, string> }[];
    };
    expect(models.models.find((m) => m.name === 'fedge-gpt')!.aliases).toHaveProperty(`task.${task}`, '1');
  });

  it('last:1 trains the last block and ln_f: the round publishes the base with their mean change, int8 again', async () => {
    const task = uniqueName('lm-last');
    const created = await post('/v1/tasks', lmBody(task, { trainable: 'last:1', rounds: 1 }));
    expect(created.status, await created.clone().text()).toBe(201);
    const trained = lastBlockWeights(spec, 1);
    expect(trained.map((w) => w.name)).toEqual([
      ...trained.filter((w) => w.name.startsWith('h.3.')).map((w) => w.name),
      'ln_f.weight',
      'ln_f.bias',
    ]);
    const length = trained.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
    const settings = ((await created.json()) as { settings: { adapter: Record<string, unknown> } }).settings;
    expect(settings.adapter).toEqual({ ...BASE, sha256: expect.any(String), trainable: 'last:1', targets: 14, length });
    // The task starts from the base's own values of those weights.
    const was = new Map(readDecoderWeights(base).weights.map((w) => [w.name, w.values]));
    const start = await taskWeights(task);
    let offset = 0;
    for (const w of trained) {
      expect(start.subarray(offset, offset + was.get(w.name)!.length)).toEqual(was.get(w.name));
      offset += was.get(w.name)!.length;
    }
    const deltas = [0, 1, 2].map((i) => {
      const r = seededRandom(77 + i);
      return new Float32Array(length).map(() => (2 * r() - 1) * 0.01);
    });
    await runRound(task, 1, deltas);
    expect((await status(task)).history[0]).toMatchObject({ status: 'published', version: 'r1' });
    const global = await taskWeights(task);
    const r1 = await publishedBytes(task, 'r1');
    const now = new Map(readDecoderWeights(r1).weights.map((w) => [w.name, w.values]));
    const inits = new Map(decodeModel(r1).graph!.initializer!.map((t) => [t.name!, t]));
    offset = 0;
    let worst = 0;
    for (const w of trained) {
      const n = was.get(w.name)!.length;
      const expected = global.subarray(offset, offset + n);
      for (let j = 0; j < n; j += 97) {
        const mean = (deltas[0]![offset + j]! + deltas[1]![offset + j]! + deltas[2]![offset + j]!) / 3;
        expect(Math.abs(expected[j]! - (was.get(w.name)![j]! + mean))).toBeLessThan(1e-6);
      }
      const q = inits.get(`${w.name}_scale`);
      const outputs = w.shape.at(-1)!;
      const scales = q ? f32(q.rawData!.slice()) : undefined;
      now.get(w.name)!.forEach((v, j) => {
        const step = scales ? scales[j % outputs]! : 1;
        worst = Math.max(worst, scales ? Math.abs(v - expected[j]!) / step : Math.abs(v - expected[j]!) * 1e6);
      });
      offset += n;
    }
    // int8 matrices within half a step; float LayerNorm weights and biases exactly (×1e6 keeps them under 0.5).
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-3);
    for (const [name, v] of was) if (!trained.some((w) => w.name === name)) expect(now.get(name)).toEqual(v);
    expect(readMetadataProps(r1)).toEqual(readMetadataProps(base));
    const gen = await post(`/v2/models/${task}/versions/r1/generate`, {
      text_input: 'Call me',
      parameters: { max_tokens: 4, temperature: 0 },
    });
    expect(gen.status).toBe(200);
  });

  it('refuses what cannot run: rank 0, a rank above the width, a classifier, a third-party decoder, stray fields', async () => {
    const body = (over: Record<string, unknown>) => lmBody(uniqueName('lm-bad'), over);
    await expectError(post('/v1/tasks', body({ trainable: 'lora:0' })), 400, /trainable must be/);
    await expectError(
      post('/v1/tasks', body({ trainable: 'lora:257' })),
      422,
      /base fedge-gpt@1: lora rank must be an integer from 1 to 256, got 257/,
    );
    await expectError(
      post('/v1/tasks', body({ base: { model: 'mnist-mlp', version: '1' } })),
      422,
      /base mnist-mlp@1: its fedge.spec is not a decoder spec/,
    );
    const thirdParty = uniqueName('pt-gpt');
    await uploadOk(thirdParty, '1', new Uint8Array(thirdPartyDecoder));
    await expectError(
      post('/v1/tasks', body({ base: { model: thirdParty, version: '1' } })),
      422,
      /no fedge.spec metadata: it is not a decoder Fedge exported/,
    );
    await expectError(post('/v1/tasks', body({ trainable: 'head', lora: { alpha: 2 } })), 400, /lora: \{ alpha \}/);
    await expectError(post('/v1/tasks', body({ spec: spec, weights: toBase64(new Uint8Array(4)) })), 400, /not both/);
    await expectError(post('/v1/tasks', body({ lora: { alpha: 0 } })), 400, /alpha/);
    await expectError(post('/v1/tasks', body({ trainable: 'last:5' })), 422, /last:<n> must name 1 to 4 blocks, got 5/);
    await expectError(post('/v1/tasks', body({ trainable: 'last:1', lora: { alpha: 2 } })), 400, /lora: \{ alpha \}/);
    await expectError(post('/v1/tasks', body({ base: { model: 'no-such-lm', version: '1' } })), 404, /no-such-lm/);
  });
});
