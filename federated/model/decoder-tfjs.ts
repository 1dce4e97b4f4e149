/**
 * The decoder's forward pass in tfjs over whole sequences (training, and the reference the ONNX graph is tested
 * against): plain tf ops on named parameter tensors, no layers, so a trainer can hand in tf.Variables and take
 * gradients. It computes what decoder-export.ts writes, op for op where it matters for the numbers: pre-LN blocks,
 * causal attention masked to MASKED_SCORE, GELU-tanh, ln_f, logits tied to wte.
 * tfjs is an optional peer dependency: the caller passes the module in (tfjs-loader.ts loads it).
 */
import type * as TF from '@tensorflow/tfjs';
import { type TokenBatch, type TokenRows, tokenBatch } from './decoder-batch.ts';
import { type DecoderSpec, MASKED_SCORE, decoderParameterShapes, decoderWeightMap, headDim } from './decoder-spec.ts';
import { ModelSpecError, type NamedWeight } from './model-spec.ts';
import type { TfjsModule } from './tfjs-loader.ts';

export interface DecoderForwardOptions {
  /**
   * How wte and wpe are looked up. 'gather' (default) is tf.gather; its gradient needs UnsortedSegmentSum, which the
   * WASM backend lacks, so training there uses 'one-hot-matmul' (oneHot(ids) @ table: the same rows, and a gradient
   * that is a matmul).
   */
  embedding?: 'gather' | 'one-hot-matmul';
}

/** The parameters as tensors by GPT-2 name (decoderParameterShapes): constants for inference, variables to train. */
export type DecoderParams = Readonly<Record<string, TF.Tensor>>;

/** Logits [batch, length, vocab] of every position, as float32 tensor (the caller disposes it). */
export function decoderLogits(
  tf: TfjsModule,
  spec: DecoderSpec,
  weights: NamedWeight[],
  inputIds: TokenRows,
  attentionMask?: TokenRows,
  opts: DecoderForwardOptions = {},
): TF.Tensor3D {
  const byName = decoderWeightMap(spec, weights, 'decoderLogits');
  const batch = tokenBatch(spec, inputIds, attentionMask);
  return tf.tidy(() => {
    const params = Object.fromEntries(
      [...byName.values()].map((w) => [w.name, tf.tensor(w.values, w.shape, 'float32')]),
    );
    return decoderForward(tf, spec, params, batch, opts);
  });
}

/** The forward pass on parameter tensors; intermediates are freed, the logits returned. */
export function decoderForward(
  tf: TfjsModule,
  spec: DecoderSpec,
  params: DecoderParams,
  tokens: TokenBatch,
  opts: DecoderForwardOptions = {},
): TF.Tensor3D {
  for (const p of decoderParameterShapes(spec))
    if (!params[p.name]) throw new ModelSpecError(`decoderForward: missing parameter ${p.name}`);
  const P = (name: string) => params[name]!;
  const { batch: b, length: s } = tokens;
  const { heads: H, embedDim: d, vocabSize: V } = spec;
  const hd = headDim(spec);
  return tf.tidy(() => {
    const lookup = (table: TF.Tensor, indices: Int32Array) => {
      const idx = tf.tensor1d(indices, 'int32');
      const rows =
        opts.embedding === 'one-hot-matmul'
          ? tf.matMul(tf.oneHot(idx, table.shape[0]!).toFloat(), table as TF.Tensor2D)
          : tf.gather(table, idx);
      return rows.reshape([b, s, d]);
    };
    // allowed[b, 0, q, k]: key k is at or before query q and is a real token (attention mask 1).
    const allowedValues = new Uint8Array(b * s * s);
    for (let r = 0; r < b; r++)
      for (let q = 0; q < s; q++)
        for (let k = 0; k <= q; k++) allowedValues[(r * s + q) * s + k] = tokens.mask[r * s + k]!;
    const allowed = tf.tensor4d(allowedValues, [b, 1, s, s], 'bool');
    const masked = tf.scalar(MASKED_SCORE);
    const scale = 1 / Math.sqrt(hd);

    const layerNorm = (x: TF.Tensor, prefix: string) => {
      const { mean, variance } = tf.moments(x, -1, true);
      const normed = x.sub(mean).mul(tf.rsqrt(variance.add(spec.layerNormEpsilon)));
      return normed.mul(P(`${prefix}.weight`)).add(P(`${prefix}.bias`));
    };
    const dense = (x: TF.Tensor, prefix: string) => {
      const W = P(`${prefix}.weight`) as TF.Tensor2D;
      const flat = x.reshape([b * s, W.shape[0]]) as TF.Tensor2D;
      return tf
        .matMul(flat, W)
        .add(P(`${prefix}.bias`))
        .reshape([b, s, W.shape[1]]);
    };
    // [b, s, d] -> [b, H, s, hd]: head h owns columns [h·hd, (h+1)·hd).
    const toHeads = (t: TF.Tensor) => t.reshape([b, s, H, hd]).transpose([0, 2, 1, 3]);
    const gelu = (x: TF.Tensor) => {
      const inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
      return x.mul(0.5).mul(tf.tanh(inner).add(1));
    };

    let x = lookup(P('wte'), tokens.ids).add(lookup(P('wpe'), tokens.positions));
    for (let i = 0; i < spec.layers; i++) {
      const h = `h.${i}`;
      const [q, k, v] = tf.split(dense(layerNorm(x, `${h}.ln_1`), `${h}.attn.c_attn`), 3, -1) as [
        TF.Tensor,
        TF.Tensor,
        TF.Tensor,
      ];
      const scores = tf.matMul(toHeads(q).mul(scale), toHeads(k), false, true);
      const probs = tf.softmax(tf.where(allowed, scores, masked), -1);
      const context = tf.matMul(probs, toHeads(v)).transpose([0, 2, 1, 3]).reshape([b, s, d]);
      x = x.add(dense(context, `${h}.attn.c_proj`));
      x = x.add(dense(gelu(dense(layerNorm(x, `${h}.ln_2`), `${h}.mlp.c_fc`)), `${h}.mlp.c_proj`));
    }
    const final = layerNorm(x, 'ln_f').reshape([b * s, d]) as TF.Tensor2D;
    return tf.matMul(final, P('wte') as TF.Tensor2D, false, true).reshape([b, s, V]) as TF.Tensor3D;
  });
}
