/**
 * A model that loaded but failed while running: a Reshape/Expand that does not fit the input, an op refusing the
 * values it got. Thrown below the routes (session-cache.ts, probe.ts) with ORT's reason cleaned of build paths and
 * clipped; routes answer it with a 400. A run that ran out of the WASM heap is one too (`outOfMemory`) until
 * session-cache.ts has released the other sessions and tried again: what still does not fit is memory.ts's 503 or 507.
 */
import { isOutOfMemoryMessage } from './memory.ts';
import { clip } from './quote.ts';

export class ModelRunError extends Error {
  override name = 'ModelRunError';
  /** Whether ORT ran out of the bounded WASM heap (std::bad_alloc / failed allocation) rather than refusing the input. */
  readonly outOfMemory: boolean;

  constructor(reason: string, outOfMemory: boolean) {
    super(reason);
    this.outOfMemory = outOfMemory;
  }

  /** Wraps whatever `session.run` threw. */
  static from(e: unknown): ModelRunError {
    const raw = String((e as Error)?.message ?? e);
    return new ModelRunError(ortReason(raw), isOutOfMemoryMessage(raw));
  }
}

/**
 * ORT's message without the wrapper and the build machine's source location:
 * "failed to call OrtRun(). ERROR_CODE: 1, ERROR_MESSAGE: /mnt/…/reshape_helper.h:93 onnxruntime::ReshapeHelper::…
 * input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped …" →
 * "input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped …".
 */
export function ortReason(message: string): string {
  let m = message.replace(/\s+/g, ' ').trim();
  m = m.replace(/^failed to call OrtRun\(\)\.\s*/, '').replace(/^ERROR_CODE: \d+, ERROR_MESSAGE: /, '');
  // "<path>:<line> <C++ signature> [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : reason" → "INVALID_ARGUMENT: reason"
  const tagged = /\[ONNXRuntimeError\] : \d+ : ([A-Z_]+) : (.*)$/.exec(m);
  if (tagged) m = `${tagged[1]}: ${tagged[2]}`;
  else {
    // "<path>:<line> <C++ signature> reason": drop the location and the signature (up to its closing parenthesis).
    const located = /^\S+\.(?:h|cc|cpp):\d+ (.*)$/.exec(m);
    if (located) m = located[1]!.replace(/^.*?\)(?: const)? (?=\S)/, '');
  }
  if (m === 'std::bad_alloc') m = 'out of memory (std::bad_alloc)';
  return clip(m, 300);
}
