/**
 * The exported decoder through the int8 weight-only quantizer: every matrix and both embeddings int8 — the tied wte
 * once, one scale per token row, for both its Gather and the output Gemm — the graph runs (prefill and cached
 * steps), picks the same next token at almost every position, and the default size shrinks ~4× to under 5 MB.
 */
import * as ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { exportDecoderOnnx } from '../../../federated/model/decoder-export.ts';
import { initDecoderWeights } from '../../../federated/model/decoder-spec.ts';
import { decodeModel } from '../../../federated/model/onnx-graph.ts';
import { quantizeModel } from '../../../federated/model/quantize.ts';
import {
  defaultSizeDecoder,
  maxAbsDiff,
  runStep,
  tinyDecoder as spec,
  tinyDecoderWeights,
} from '../../fixtures/tiny-decoder.ts';

const V = spec.vocabSize;
const fp32 = exportDecoderOnnx(spec, tinyDecoderWeights());
const { bytes: int8, report } = quantizeModel(fp32);
const measured: Record<string, number | string> = {};
afterAll(() => console.log(`decoder int8: ${JSON.stringify(measured)}`));

const argmaxes = (logits: Float32Array) =>
  Array.from({ length: logits.length / V }, (_, p) => {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[p * V + j]! > logits[p * V + best]!) best = j;
    return best;
  });

describe('quantizeModel on an exported decoder (weight-only int8)', () => {
  it('stores every matrix and both embeddings int8; wte once, per token row, for the Gather and the tied Gemm', () => {
    const byWeight = new Map(report.quantized.map((q) => [q.weight, q]));
    expect(byWeight.get('wte')).toMatchObject({ axis: 0, nodes: ['Gather_token_embeddings', 'Gemm_logits_flat'] });
    expect(byWeight.get('wpe')).toMatchObject({ axis: 0 });
    for (let i = 0; i < spec.layers; i++)
      for (const m of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'])
        expect(byWeight.get(`h.${i}.${m}.weight`)).toMatchObject({ axis: 1 });
    expect(report.quantized).toHaveLength(2 + 4 * spec.layers);
    const graph = decodeModel(int8).graph!;
    expect(graph.initializer!.filter((t) => t.name!.startsWith('wte'))).toHaveLength(3); // int8 values, scales, zero points
  });

  it('runs a prefill and cached steps, with the float model’s next token at almost every position', async () => {
    const sessions = await Promise.all([fp32, int8].map((b) => ort.InferenceSession.create(b)));
    const prompt = [[1, 17, 42, 8, 96, 3, 55, 23, 0, 71, 64, 12, 5, 88, 31, 40]];
    const n = prompt[0]!.length;
    const [f, q] = await Promise.all(
      sessions.map((s) => runStep(s, spec, prompt, [Array(n).fill(1)], [prompt[0]!.map((_, i) => i)])),
    );
    const same = argmaxes(f!.logits).filter((t, p) => t === argmaxes(q!.logits)[p]).length;
    measured['argmax agreement'] = `${same}/${n}`;
    measured['max |int8 - fp32| logits'] = maxAbsDiff(f!.logits, q!.logits);
    expect(same / n).toBeGreaterThanOrEqual(0.8);
    // Cached steps run on the int8 graph and follow its own greedy choices.
    let { present } = q!;
    let token = argmaxes(q!.logits)[n - 1]!;
    for (let k = 0; k < 3; k++) {
      const step = await runStep(sessions[1]!, spec, [[token]], [Array(n + k + 1).fill(1)], [[n + k]], present);
      expect(step.logits.every(Number.isFinite)).toBe(true);
      token = argmaxes(step.logits)[0]!;
      present = step.present;
    }
    expect(present[0]!.dims).toEqual([1, spec.heads, n + 3, spec.embedDim / spec.heads]);
    await Promise.all(sessions.map((s) => s.release()));
  });

  it('shrinks the default size (V=4096, T=256, d=256, L=4, mlp 1024) ~4×, to under 5 MB, and it runs', async () => {
    const big = exportDecoderOnnx(defaultSizeDecoder, initDecoderWeights(defaultSizeDecoder, 1));
    const small = quantizeModel(big).bytes;
    measured['default fp32 bytes'] = big.length;
    measured['default int8 bytes'] = small.length;
    expect(big.length / small.length).toBeGreaterThan(3.7);
    expect(small.length).toBeLessThan(5_000_000);
    const session = await ort.InferenceSession.create(small);
    const { logits } = await runStep(session, defaultSizeDecoder, [[1, 2, 3]], [[1, 1, 1]], [[0, 1, 2]]);
    expect(logits.length).toBe(3 * defaultSizeDecoder.vocabSize);
    expect(logits.every(Number.isFinite)).toBe(true);
    await session.release();
  });

  it('runs on onnxruntime-web (WASM, what the edge and browsers use): prefill from past length 0, then a cached step', async () => {
    ortWeb.env.wasm.numThreads = 1;
    const web = (await ortWeb.InferenceSession.create(int8)) as unknown as ort.InferenceSession;
    // onnxruntime-node rewrites DequantizeLinear + MatMul into com.microsoft MatMulNBits, which by default
    // (accuracy level 4) also quantizes the activations: logits move by ~0.02. Level 1 keeps its compute fp32, what
    // onnxruntime-web computes.
    const node = await ort.InferenceSession.create(int8, {
      extra: { session: { qdq_matmulnbits_accuracy_level: '1' } },
    } as ort.InferenceSession.SessionOptions);
    const Tensor = ortWeb.Tensor as unknown as typeof ort.Tensor;
    const ids = [[1, 17, 42, 8]];
    const mask = [[1, 1, 1, 1]];
    const positions = [[0, 1, 2, 3]];
    const [w, n] = [
      await runStep(web, spec, ids, mask, positions, undefined, Tensor),
      await runStep(node, spec, ids, mask, positions),
    ];
    const diffs = [maxAbsDiff(w.logits, n.logits)];
    const [ws, ns] = [
      await runStep(web, spec, [[5]], [[1, 1, 1, 1, 1]], [[4]], w.present, Tensor),
      await runStep(node, spec, [[5]], [[1, 1, 1, 1, 1]], [[4]], n.present),
    ];
    diffs.push(maxAbsDiff(ws.logits, ns.logits));
    measured['max |ort-web - ort-node|'] = Math.max(...diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-4);
    await Promise.all([web.release(), node.release()]);
  });
});
