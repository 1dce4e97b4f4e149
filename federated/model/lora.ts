/**
 * LoRA adapters on a decoder's projections (Hu et al., ICLR 2022), as FFA-LoRA trains them (Sun et al., "Improving
 * LoRA in Privacy-preserving Federated Learning", ICLR 2024): for each adapted weight W [in, out] (input-major,
 * y = x·W), ΔW = (alpha / rank) · A · B with A [in, rank] frozen — derived from the task's public seed, so every
 * device and the server hold the same A — and only B [rank, out] trained, starting at 0. The averaged update is then
 * exactly the merge of the averaged adapters: mean over devices of A·Bₖ = A·mean(Bₖ), the sum SecAgg+ computes. Pure.
 */
import type { DecoderSpec } from './decoder-spec.ts';
import { decoderParameterShapes } from './decoder-spec.ts';
import { ModelSpecError } from './model-spec.ts';
import { seededRandom } from '../seeded-random.ts';

export interface LoraSettings {
  rank: number;
  /** ΔW = (alpha / rank) · A · B. */
  alpha: number;
  /** The public seed A is derived from (a task's, so devices and the server agree). */
  seed: number;
}

/** An adapted weight: its name in the spec, W's shape, and where its B sits in the flat update. */
export interface LoraTarget {
  name: string;
  inputs: number;
  outputs: number;
  /** Offset of this target's B (rank × outputs, row-major) in the flat update. */
  offset: number;
}

const ADAPTED = /^h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/** The weights LoRA adapts (every attention and MLP projection, in the spec's order), and the update's layout. */
export function loraTargets(spec: DecoderSpec, rank: number): { targets: LoraTarget[]; length: number } {
  if (!Number.isInteger(rank) || rank < 1 || rank > spec.embedDim)
    throw new ModelSpecError(`lora rank must be an integer from 1 to ${spec.embedDim}, got ${rank}`);
  const targets: LoraTarget[] = [];
  let offset = 0;
  for (const { name, shape } of decoderParameterShapes(spec))
    if (ADAPTED.test(name)) {
      const [inputs, outputs] = shape as [number, number];
      targets.push({ name, inputs, outputs, offset });
      offset += rank * outputs;
    }
  return { targets, length: offset };
}

/**
 * A of `target` ([inputs, rank], row-major): uniform in ±1/√inputs (LoRA's Kaiming-uniform init), from a PRNG seeded
 * by the task's seed and the target's place. Integer arithmetic then one division: the same bits in every engine.
 */
export function loraA(target: LoraTarget, index: number, lora: LoraSettings): Float32Array {
  const random = seededRandom((lora.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const bound = 1 / Math.sqrt(target.inputs);
  const a = new Float32Array(target.inputs * lora.rank);
  for (let i = 0; i < a.length; i++) a[i] = (2 * random() - 1) * bound;
  return a;
}

/**
 * W + (alpha / rank) · A · B for every target, B read from `flatB` (the update's layout): the merged weights, by
 * name (new arrays; `weights` is not changed). What a round publishes after averaging the devices' B.
 */
export function mergeLora(
  spec: DecoderSpec,
  weights: ReadonlyMap<string, Float32Array>,
  lora: LoraSettings,
  flatB: Float32Array,
): Map<string, Float32Array> {
  const { targets, length } = loraTargets(spec, lora.rank);
  if (flatB.length !== length)
    throw new ModelSpecError(`the LoRA update has ${flatB.length} values, expected ${length}`);
  const scale = lora.alpha / lora.rank;
  const merged = new Map<string, Float32Array>();
  targets.forEach((t, index) => {
    const w = weights.get(t.name);
    if (!w || w.length !== t.inputs * t.outputs)
      throw new ModelSpecError(`weight ${t.name} is missing or not [${t.inputs}, ${t.outputs}]`);
    const a = loraA(t, index, lora);
    const out = Float32Array.from(w);
    const r = lora.rank;
    for (let i = 0; i < t.inputs; i++)
      for (let k = 0; k < r; k++) {
        const aik = scale * a[i * r + k]!;
        if (aik === 0) continue;
        const row = t.offset + k * t.outputs;
        for (let j = 0; j < t.outputs; j++) out[i * t.outputs + j]! += aik * flatB[row + j]!;
      }
    merged.set(t.name, out);
  });
  return merged;
}
