/**
 * exportDecoderOnnx: decoder spec + named float32 weights -> ONNX bytes (opset 17) in the I/O layout Hugging Face
 * Optimum exports for text-generation-with-past (what transformers.js and the edge's decode loop run):
 *   inputs  input_ids, attention_mask, position_ids (int64) and past_key_values.{i}.key/.value
 *           [batch_size, heads, past_sequence_length, head_dim] (past length 0 on the first step);
 *   outputs logits [batch_size, sequence_length, vocab] and present.{i}.key/.value (past + this step's keys/values).
 * The causal mask is built from shapes at run time (the new queries sit at positions past..past+seq-1) and combined
 * with attention_mask. Only standard ops, GELU from primitives, so ORT web/node and transformers.js all run it.
 */
import { type DecoderSpec, MASKED_SCORE, decoderWeightMap, headDim } from './decoder-spec.ts';
import type { NamedWeight } from './model-spec.ts';
import {
  type Dim,
  ElemType,
  type NodeProto,
  type TensorProto,
  encodeModel,
  floatTensor,
  int64Tensor,
  node,
  valueInfo,
} from './onnx-graph.ts';

const BATCH = 'batch_size';
const SEQUENCE = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'past_sequence_length + sequence_length';

/** The graph being written: nodes, initializers, and a constant helper that names each constant once. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  /** constants by name: a name asked for twice (by the same values) is written once */
  private readonly constants = new Set<string>();

  op(opType: string, inputs: string[], output: string, attrs: Parameters<typeof node>[3] = {}): string {
    this.nodes.push(node(opType, inputs, [output], attrs));
    return output;
  }

  floatConst(name: string, values: number[], dims: number[] = []): string {
    return this.constant(name, () => floatTensor(name, dims, Float32Array.from(values)));
  }

  int64Const(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.constant(name, () => int64Tensor(name, dims, values));
  }

  weight(w: NamedWeight): string {
    this.inits.push(floatTensor(w.name, w.shape, w.values));
    return w.name;
  }

  private constant(name: string, make: () => TensorProto): string {
    if (!this.constants.has(name)) {
      this.inits.push(make());
      this.constants.add(name);
    }
    return name;
  }
}

export function exportDecoderOnnx(
  spec: DecoderSpec,
  weights: NamedWeight[],
  opts: { metadata?: Record<string, string> } = {},
): Uint8Array {
  const byName = decoderWeightMap(spec, weights, 'exportDecoderOnnx');
  const g = new GraphBuilder();
  const w = (name: string) => g.weight(byName.get(name)!);
  const { heads: H, embedDim: d, vocabSize: V, layers: L } = spec;
  const hd = headDim(spec);
  const eps = { float: spec.layerNormEpsilon };

  // Shapes read at run time: B and S from input_ids, P from the first layer's past keys.
  const one = g.int64Const('one', [1], []);
  const idsShape = g.op('Shape', ['input_ids'], 'input_ids_shape');
  const pastShape = g.op('Shape', ['past_key_values.0.key'], 'past_shape');
  const seqLen = g.op('Gather', [idsShape, one], 'seq_len', { axis: 0 });
  const pastLen = g.op('Gather', [pastShape, g.int64Const('two', [2], [])], 'past_len', { axis: 0 });
  const totalLen = g.op('Add', [pastLen, seqLen], 'total_len');

  // allowed[b, 1, q, k] = key k is at or before query q's position (past + q) and attention_mask[b, k] is 1.
  const queryPos = g.op('Range', [pastLen, totalLen, one], 'query_positions');
  const keyPos = g.op('Range', [g.int64Const('zero', [0], []), totalLen, one], 'key_positions');
  const causal = g.op(
    'LessOrEqual',
    [
      g.op('Unsqueeze', [keyPos, g.int64Const('axes_0', [0])], 'key_positions_row'),
      g.op('Unsqueeze', [queryPos, g.int64Const('axes_1', [1])], 'query_positions_column'),
    ],
    'causal',
  );
  const keyMask = g.op(
    'Unsqueeze',
    [g.op('Cast', ['attention_mask'], 'attention_mask_bool', { to: ElemType.BOOL }), g.int64Const('axes_1_2', [1, 2])],
    'key_mask',
  );
  const allowed = g.op('And', [keyMask, causal], 'allowed');
  const masked = g.floatConst('masked_score', [MASKED_SCORE]);
  const scale = g.floatConst('attention_scale', [1 / Math.sqrt(hd)]);

  let x = g.op(
    'Add',
    [
      g.op('Gather', [w('wte'), 'input_ids'], 'token_embeddings'),
      g.op('Gather', [w('wpe'), 'position_ids'], 'position_embeddings'),
    ],
    'h_in',
  );

  const headsShape = g.int64Const('heads_shape', [0, 0, H, hd]);
  const mergedShape = g.int64Const('merged_shape', [0, 0, d]);
  const splitSizes = g.int64Const('qkv_split', [d, d, d]);
  const dense = (input: string, prefix: string, out: string) =>
    g.op('Add', [g.op('MatMul', [input, w(`${prefix}.weight`)], `${out}_matmul`), w(`${prefix}.bias`)], out);
  const layerNorm = (input: string, prefix: string, out: string) =>
    g.op('LayerNormalization', [input, w(`${prefix}.weight`), w(`${prefix}.bias`)], out, { axis: -1, epsilon: eps });
  // [B, S, d] -> [B, H, S, hd]: head h owns columns [h·hd, (h+1)·hd).
  const toHeads = (t: string) =>
    g.op('Transpose', [g.op('Reshape', [t, headsShape], `${t}_heads`)], `${t}_bhsd`, { perm: [0, 2, 1, 3] });

  for (let i = 0; i < L; i++) {
    const h = `h.${i}`;
    const qkv = dense(layerNorm(x, `${h}.ln_1`, `${h}.ln_1`), `${h}.attn.c_attn`, `${h}.qkv`);
    const [q, k, v] = ['q', 'k', 'v'].map((n) => `${h}.${n}`) as [string, string, string];
    g.nodes.push(node('Split', [qkv, splitSizes], [q, k, v], { axis: -1 }));
    const key = g.op('Concat', [`past_key_values.${i}.key`, toHeads(k)], `present.${i}.key`, { axis: 2 });
    const value = g.op('Concat', [`past_key_values.${i}.value`, toHeads(v)], `present.${i}.value`, { axis: 2 });
    const scores = g.op(
      'MatMul',
      [
        g.op('Mul', [toHeads(q), scale], `${h}.q_scaled`),
        g.op('Transpose', [key], `${h}.key_t`, { perm: [0, 1, 3, 2] }),
      ],
      `${h}.scores`,
    );
    const probs = g.op('Softmax', [g.op('Where', [allowed, scores, masked], `${h}.scores_masked`)], `${h}.probs`, {
      axis: -1,
    });
    const context = g.op(
      'Reshape',
      [
        g.op('Transpose', [g.op('MatMul', [probs, value], `${h}.context_bhsd`)], `${h}.context_bshd`, {
          perm: [0, 2, 1, 3],
        }),
        mergedShape,
      ],
      `${h}.context`,
    );
    x = g.op('Add', [x, dense(context, `${h}.attn.c_proj`, `${h}.attn_out`)], `${h}.after_attn`);
    const fc = dense(layerNorm(x, `${h}.ln_2`, `${h}.ln_2`), `${h}.mlp.c_fc`, `${h}.fc`);
    x = g.op('Add', [x, dense(geluTanh(g, fc), `${h}.mlp.c_proj`, `${h}.mlp_out`)], `${h}.out`);
  }

  // Tied output: logits = ln_f(x) @ wteᵀ, as Gemm(transB) on [B·S, d] so the table is read untransposed by both the
  // Gather and the Gemm (the int8 quantizer then stores it once, one scale per token row for both uses).
  const final = layerNorm(x, 'ln_f', 'ln_f');
  const flat = g.op('Reshape', [final, g.int64Const('flat_shape', [-1, d])], 'ln_f_flat');
  const logitsFlat = g.op('Gemm', [flat, 'wte'], 'logits_flat', { transB: 1 });
  const batchSeq = g.op(
    'Slice',
    [idsShape, g.int64Const('start_0', [0]), g.int64Const('end_2', [2])],
    'batch_and_sequence',
  );
  const logitsShape = g.op('Concat', [batchSeq, g.int64Const('vocab', [V])], 'logits_shape', { axis: 0 });
  g.op('Reshape', [logitsFlat, logitsShape], 'logits');

  const kv = (kind: 'past_key_values' | 'present', i: number, part: 'key' | 'value', len: Dim) =>
    valueInfo(`${kind}.${i}.${part}`, ElemType.FLOAT, [BATCH, H, len, hd]);
  const layerIds = Array.from({ length: L }, (_, i) => i);
  const graph = {
    name: spec.name,
    node: g.nodes,
    initializer: g.inits,
    input: [
      valueInfo('input_ids', ElemType.INT64, [BATCH, SEQUENCE]),
      valueInfo('attention_mask', ElemType.INT64, [BATCH, TOTAL]),
      valueInfo('position_ids', ElemType.INT64, [BATCH, SEQUENCE]),
      ...layerIds.flatMap((i) => [kv('past_key_values', i, 'key', PAST), kv('past_key_values', i, 'value', PAST)]),
    ],
    output: [
      valueInfo('logits', ElemType.FLOAT, [BATCH, SEQUENCE, V]),
      ...layerIds.flatMap((i) => [kv('present', i, 'key', TOTAL), kv('present', i, 'value', TOTAL)]),
    ],
  };
  return encodeModel(graph, { metadata: { 'fedge.spec': JSON.stringify(spec), ...opts.metadata } });
}

/** GELU, tanh approximation (GPT-2's "gelu_new"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function geluTanh(g: GraphBuilder, x: string): string {
  const cube = g.op('Pow', [x, g.floatConst('three', [3])], `${x}_cube`);
  const inner = g.op('Add', [x, g.op('Mul', [cube, g.floatConst('gelu_c', [0.044715])], `${x}_cube_c`)], `${x}_inner`);
  const t = g.op(
    'Tanh',
    [g.op('Mul', [inner, g.floatConst('sqrt_2_over_pi', [Math.sqrt(2 / Math.PI)])], `${x}_arg`)],
    `${x}_tanh`,
  );
  const onePlus = g.op('Add', [t, g.floatConst('one_f', [1])], `${x}_one_plus`);
  return g.op('Mul', [g.op('Mul', [x, g.floatConst('half', [0.5])], `${x}_half`), onePlus], `${x}_gelu`);
}
