/**
 * The run at upload: a model is stored only if it runs once on inputs built from its own metadata — every
 * dynamic dimension 1, every element zero (false for BOOL) — and its outputs fit in a response. This catches
 * graphs that load but can never run (a Reshape or Expand that fits no input, an Expand to 10¹⁰ elements) before
 * a single inference answers for them.
 *
 * What it cannot catch: a model whose failure depends on the values (a Range whose delta is an input, a Reshape
 * whose target shape is an input that zeros happen to satisfy). Such a model is refused if zeros make it fail;
 * there is no opt-out, because the server cannot tell "needs other values" from "broken" — an uploader can
 * give the value a default (an initializer) or a fixed shape. Whatever passes, every later run's failure is
 * still a 400 with ORT's reason, and the WASM heap bound holds whatever it allocates.
 */
import { fail } from '../middleware/errors.ts';
import { DATATYPE_INFO } from '../../federated/oip/datatypes.ts';
import type { LoadedModel } from './model-loader.ts';
import { quote, showShape } from './quote.ts';
import { runSession } from './session-cache.ts';
import type { Tensor } from './tensor-codec.ts';

export interface ProbeLimits {
  /** Elements one request (inputs added up) or one response (outputs added up) may carry. */
  maxElements: number;
}

/** The probe's inputs: dynamic dimensions 1, zeros. 400 when the fixed dimensions alone exceed what any request may send. */
export function probeInputs(model: LoadedModel, limits: ProbeLimits): Tensor[] {
  let total = 0;
  return model.inputs.map((m) => {
    const shape = m.shape.map((d) => (d < 0 ? 1 : d));
    const count = shape.reduce((n, d) => n * d, 1);
    total += count;
    if (total > limits.maxElements) {
      fail(400, `input ${quote(m.name)} has the fixed shape ${showShape(m.shape)}: with the other inputs more than the ${limits.maxElements} elements a request may carry, so no request could run this model`);
    }
    return { name: m.name, datatype: m.datatype, shape, data: new DATATYPE_INFO[m.datatype].array(count) };
  });
}

/** Runs `model` once on probeInputs; throws ModelRunError (ORT failed) or a 400 (outputs too large to serve). */
export async function probeModel(model: LoadedModel, limits: ProbeLimits): Promise<void> {
  const outputs = await runSession(model, probeInputs(model, limits), [], 'an uploaded model (probe)');
  checkOutputSize(outputs, limits.maxElements, 'on inputs of batch 1');
}

/** 400 when outputs add up to more elements than a response may carry. */
export function checkOutputSize(outputs: Tensor[], maxElements: number, when = ''): void {
  let total = 0;
  for (const t of outputs) {
    total += t.data.length;
    if (total > maxElements) {
      fail(400, `the model's output ${quote(t.name)} has shape ${showShape(t.shape)}${when ? ` ${when}` : ''}: the outputs add up to more than the ${maxElements} elements a response may carry`);
    }
  }
}
