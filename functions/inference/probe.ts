/**
 * The run at upload: a model is stored only if it runs once on inputs built from its own metadata — every
 * dynamic dimension 1, every element zero (false for BOOL, empty for BYTES) — and its outputs fit in a response. This catches
 * graphs that load but can never run (a Reshape or Expand that fits no input, an Expand to 10¹⁰ elements) before
 * a single inference answers for them. A model that needs a longer input than 1 along an open dimension (an audio
 * model whose STFT padding needs ≥ 97 samples, such as Silero VAD) gets a second try with its open dimensions at
 * PROBE_LENGTH except those it names as a batch; it is refused only when both fail, with the first reason.
 *
 * What it cannot catch: a model whose failure depends on the values (a Range whose delta is an input, a Reshape
 * whose target shape is an input that zeros happen to satisfy). Such a model is refused if zeros make it fail;
 * there is no opt-out, because the server cannot tell "needs other values" from "broken" — an uploader can
 * give the value a default (an initializer) or a fixed shape. Whatever passes, every later run's failure is
 * still a 400 with ORT's reason, and the WASM heap bound holds whatever it allocates.
 */
import { refuseModel } from './errors.ts';
import { ModelRunError } from './run-error.ts';
import { DATATYPE_INFO } from '../../federated/oip/datatypes.ts';
import type { LoadedModel } from './model-loader.ts';
import { quote, showShape } from './quote.ts';
import { runSession } from './session-cache.ts';
import type { Tensor } from './tensor-codec.ts';

export interface ProbeLimits {
  /** Elements one request (inputs added up) or one response (outputs added up) may carry. */
  maxElements: number;
}

/** Size the second try gives open dimensions after the first: a second of 16 kHz audio is 16,000; 512 samples is a frame. */
export const PROBE_LENGTH = 512;
const BATCH_NAME = /batch|^n$|^b$|^bs$/i;

/**
 * The probe's inputs, zeros: open dimensions 1, or with `length` the second try's sizes — a dimension the model
 * names like a batch (`batch`, `N`, …) 1, any other open dimension `length` (a blank first dimension counts as the
 * batch). Names are ORT's, so dimensions that share a name get one size. 400 when the fixed dimensions alone exceed
 * what any request may send.
 */
export function probeInputs(model: LoadedModel, limits: ProbeLimits, length = 1): Tensor[] {
  const named = new Map(model.session.inputMetadata.map((m) => [m.name, 'shape' in m ? m.shape : []] as const));
  const open = (input: string, i: number): number => {
    if (length === 1) return 1;
    const dim = named.get(input)?.[i];
    if (typeof dim === 'string' && dim !== '') return BATCH_NAME.test(dim) ? 1 : length;
    return i === 0 ? 1 : length;
  };
  let total = 0;
  return model.inputs.map((m) => {
    const shape = m.shape.map((d, i) => (d < 0 ? open(m.name, i) : d));
    const count = shape.reduce((n, d) => n * d, 1);
    total += count;
    if (total > limits.maxElements) {
      refuseModel(`input ${quote(m.name)} has the fixed shape ${showShape(m.shape)}: with the other inputs more than the ${limits.maxElements} elements a request may carry, so no request could run this model`);
    }
    return m.datatype === 'BYTES'
      ? { name: m.name, datatype: m.datatype, shape, data: new Array<string>(count).fill('') }
      : { name: m.name, datatype: m.datatype, shape, data: new DATATYPE_INFO[m.datatype].array(count) };
  });
}

/** Runs `model` once on probeInputs; throws ModelRunError (ORT failed) or a 400 (outputs too large to serve). */
export async function probeModel(model: LoadedModel, limits: ProbeLimits): Promise<void> {
  let outputs: Tensor[];
  try {
    outputs = await runSession(model, probeInputs(model, limits), [], 'an uploaded model (probe)');
  } catch (first) {
    const longer = model.inputs.some((m) => m.shape.some((d) => d < 0));
    if (!(first instanceof ModelRunError) || first.outOfMemory || !longer) throw first;
    let inputs: Tensor[];
    try {
      inputs = probeInputs(model, limits, PROBE_LENGTH);
    } catch {
      throw first; // the longer inputs would not fit a request either
    }
    try {
      outputs = await runSession(model, inputs, [], 'an uploaded model (probe)');
    } catch {
      throw first;
    }
  }
  checkOutputSize(outputs, limits.maxElements, 'on inputs of batch 1');
}

/** 400 when outputs add up to more elements than a response may carry. */
export function checkOutputSize(outputs: Tensor[], maxElements: number, when = ''): void {
  let total = 0;
  for (const t of outputs) {
    total += t.data.length;
    if (total > maxElements) {
      refuseModel(`the model's output ${quote(t.name)} has shape ${showShape(t.shape)}${when ? ` ${when}` : ''}: the outputs add up to more than the ${maxElements} elements a response may carry`);
    }
  }
}
