/**
 * The decoder's forward pass for training, with LoRA adapters: federated/model/decoder-tfjs.ts's decoderForward op
 * for op (pre-LN blocks, causal attention masked to MASKED_SCORE, GELU-tanh, ln_f, logits tied to wte), plus, on an
 * adapted projection W, the low-rank path x·W + (α/r)·(x·A)·B — ΔW = A·B is never formed. B may carry a leading
 * batch axis ([batch, rank, out], one copy per sequence): the gradient of the summed loss with respect to those
 * copies is then every sequence's own gradient of B, in one backward pass (what DP-SGD clips). The test
 * (test/client/training/lm-trainer.test.ts) holds it to the exported ONNX graph within 1e-4.
 */
import type * as TF from '@tensorflow/tfjs';
import type { TokenBatch } from '../../federated/model/decoder-batch.ts';
import { type DecoderSpec, MASKED_SCORE, headDim } from '../../federated/model/decoder-spec.ts';
import type { TfjsModule } from '../../federated/model/tfjs-loader.ts';

/** tfjs types customGrad's function as variadic; these take (x, save). */
export type CustomGradient = Parameters<typeof TF.customGrad>[0];

/** A projection's adapter: A [in, rank] (frozen), B [rank, out] or per sequence [batch, rank, out]; scale α/r. */
export interface Adapter {
  a: TF.Tensor2D;
  b: TF.Tensor;
  scale: number;
}

export interface LmForwardOptions {
  /** As in decoderForward: 'one-hot-matmul' where the embeddings train on a backend without gather's gradient. */
  embedding?: 'gather' | 'one-hot-matmul' | undefined;
  /** Adapters by the adapted weight's name (e.g. "h.0.attn.c_attn.weight"). */
  adapters?: ReadonlyMap<string, Adapter> | undefined;
  /**
   * Recompute each block in the backward pass instead of keeping its activations (gradient checkpointing, Chen et
   * al. 2016): memory for the blocks' inputs only, one more forward pass of compute. `differentiable` names the
   * tensors gradients are taken for (trained weights, per-sequence B's); the rest are constants.
   */
  checkpoint?: { differentiable: (t: TF.Tensor) => boolean } | undefined;
}

/** Logits [batch, length, vocab] (the caller disposes them); intermediates are freed. */
export function lmForward(
  tf: TfjsModule,
  spec: DecoderSpec,
  params: Readonly<Record<string, TF.Tensor>>,
  tokens: TokenBatch,
  opts: LmForwardOptions = {},
): TF.Tensor3D {
  // In a checkpointed block's recomputation, the tensors it differentiates are stand-ins for the originals.
  let sub: ReadonlyMap<TF.Tensor, TF.Tensor> | undefined;
  const swap = (t: TF.Tensor) => sub?.get(t) ?? t;
  const P = (name: string) => {
    const p = params[name];
    if (!p) throw new Error(`lmForward: missing parameter ${name}`);
    return swap(p);
  };
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
    const allowedValues = new Uint8Array(b * s * s);
    for (let r = 0; r < b; r++)
      for (let q = 0; q < s; q++)
        for (let k = 0; k <= q; k++) allowedValues[(r * s + q) * s + k] = tokens.mask[r * s + k]!;
    // Made where they are used: a checkpointed block's backward pass runs after this scope has ended.
    const attentionConstants = () => ({
      allowed: tf.tensor4d(allowedValues, [b, 1, s, s], 'bool'),
      masked: tf.scalar(MASKED_SCORE),
    });
    const scale = 1 / Math.sqrt(hd);

    const layerNorm = (x: TF.Tensor, prefix: string) => {
      const { mean, variance } = tf.moments(x, -1, true);
      const normed = x.sub(mean).mul(tf.rsqrt(variance.add(spec.layerNormEpsilon)));
      return normed.mul(P(`${prefix}.weight`)).add(P(`${prefix}.bias`));
    };
    const dense = (x: TF.Tensor, prefix: string) => {
      const W = P(`${prefix}.weight`) as TF.Tensor2D;
      const [inputs, outputs] = W.shape;
      const flat = x.reshape([b * s, inputs]) as TF.Tensor2D;
      let y = tf
        .matMul(flat, W)
        .add(P(`${prefix}.bias`))
        .reshape([b, s, outputs]);
      const adapter = opts.adapters?.get(`${prefix}.weight`);
      if (adapter) {
        const xa = tf.matMul(flat, adapter.a).mul(adapter.scale);
        const low =
          adapter.b.rank === 3
            ? tf.matMul(xa.reshape([b, s, adapter.a.shape[1]]) as TF.Tensor3D, swap(adapter.b) as TF.Tensor3D)
            : tf.matMul(xa as TF.Tensor2D, swap(adapter.b) as TF.Tensor2D).reshape([b, s, outputs]);
        y = y.add(low);
      }
      return y;
    };
    const toHeads = (t: TF.Tensor) => t.reshape([b, s, H, hd]).transpose([0, 2, 1, 3]);
    const gelu = geluWithGradient(tf);

    const block = (input: TF.Tensor, i: number) => {
      const h = `h.${i}`;
      const { allowed, masked } = attentionConstants();
      let x = input;
      const [q, k, v] = tf.split(dense(layerNorm(x, `${h}.ln_1`), `${h}.attn.c_attn`), 3, -1) as [
        TF.Tensor,
        TF.Tensor,
        TF.Tensor,
      ];
      const scores = tf.matMul(toHeads(q).mul(scale), toHeads(k), false, true);
      const probs = tf.softmax(tf.where(allowed, scores, masked), -1);
      const context = tf.matMul(probs, toHeads(v)).transpose([0, 2, 1, 3]).reshape([b, s, d]);
      x = x.add(dense(context, `${h}.attn.c_proj`));
      return x.add(dense(gelu(dense(layerNorm(x, `${h}.ln_2`), `${h}.mlp.c_fc`)), `${h}.mlp.c_proj`));
    };
    /**
     * Checkpointing: the block runs off the tape and keeps only its input; its backward pass runs it again under a
     * tape of its own (tf.grads) for the gradients of the input and of the block's differentiable tensors.
     */
    const checkpointed = (input: TF.Tensor, i: number) => {
      const h = `h.${i}.`;
      const own = [
        ...Object.keys(params)
          .filter((n) => n.startsWith(h))
          .map((n) => params[n]!),
        ...[...(opts.adapters ?? new Map<string, Adapter>())].filter(([n]) => n.startsWith(h)).map(([, a]) => a.b),
      ].filter((t) => opts.checkpoint!.differentiable(t));
      const f = tf.customGrad(((...args: unknown[]) => {
        const save = args.pop() as (t: TF.Tensor[]) => void;
        const inputs = args as TF.Tensor[];
        save(inputs);
        return {
          value: tf.tidy(() => block(inputs[0]!, i)),
          gradFunc: (dy: TF.Tensor, saved: TF.Tensor[]) => {
            // tfjs 4 keeps one tape: a gradient taken inside the outer backward pass starts a fresh one and clears it
            // when done, which would leave the outer pass without its tape at its end. It is put back.
            const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
            const outer = state.activeTape;
            try {
              return tf.grads((...xs: TF.Tensor[]) => {
                sub = new Map(own.map((t, k) => [t, xs[k + 1]!]));
                try {
                  return block(xs[0]!, i);
                } finally {
                  sub = undefined;
                }
              })(saved, dy);
            } finally {
              state.activeTape = outer;
            }
          },
        };
      }) as CustomGradient);
      return f(input, ...own);
    };

    let x = lookup(P('wte'), tokens.ids).add(lookup(P('wpe'), tokens.positions));
    for (let i = 0; i < spec.layers; i++) x = opts.checkpoint ? checkpointed(x, i) : block(x, i);
    const final = layerNorm(x, 'ln_f').reshape([b * s, d]) as TF.Tensor2D;
    return tf.matMul(final, P('wte') as TF.Tensor2D, false, true).reshape([b, s, V]) as TF.Tensor3D;
  });
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU-tanh, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), with its derivative written out: autodiff through the
 * composite would keep its eight [batch, length, mlp] intermediates for the backward pass; this keeps x alone.
 */
function geluWithGradient(tf: TfjsModule): (x: TF.Tensor) => TF.Tensor {
  const f = tf.customGrad(((x: TF.Tensor, save: (t: TF.Tensor[]) => void) => {
    save([x]);
    const inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(GELU_C);
    return {
      value: x.mul(0.5).mul(tf.tanh(inner).add(1)),
      gradFunc: (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const x = saved[0]!;
        const t = tf.tanh(x.add(x.mul(x).mul(x).mul(0.044715)).mul(GELU_C));
        // d/dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)
        const dInner = x
          .mul(x)
          .mul(3 * 0.044715)
          .add(1)
          .mul(GELU_C);
        const grad = t
          .add(1)
          .mul(0.5)
          .add(x.mul(0.5).mul(tf.sub(1, t.square())).mul(dInner));
        return [dy.mul(grad)];
      },
    };
  }) as CustomGradient);
  return (x) => f(x) as TF.Tensor;
}
