/**
 * The models bundled with the Worker, registered on first use so a fresh `npm start` serves a real model.
 * Registration is idempotent (same bytes, same version: unchanged) and safe to race between isolates.
 */
import mnistCnnInt8 from '../../models/mnist-cnn/model.int8.onnx';
import mnistMlpInt8 from '../../models/mnist-mlp/model.int8.onnx';
import spamBowInt8 from '../../models/spam-bow/model.int8.onnx';
import fedgeGptInt8 from '../../models/fedge-gpt/model.int8.onnx';
import { publishModel } from './publish-model.ts';
import type { ModelCatalog } from './model-catalog.ts';

export interface BundledModel {
  name: string;
  version: string;
  bytes: ArrayBuffer;
}

export const DEFAULT_MODEL = 'mnist-mlp';
/** The language model the generate routes and /openai/v1 serve out of the box. */
export const DEFAULT_LANGUAGE_MODEL = 'fedge-gpt';

/**
 * The default models of models/ (int8): the MNIST MLP (the default), the MNIST CNN, the SpamAssassin classifier, and
 * the small GPT trained on public-domain text (its tokenizer inside).
 */
export const BUNDLED_MODELS: BundledModel[] = [
  { name: DEFAULT_MODEL, version: '1', bytes: mnistMlpInt8 },
  { name: 'mnist-cnn', version: '1', bytes: mnistCnnInt8 },
  { name: 'spam-bow', version: '1', bytes: spamBowInt8 },
  { name: DEFAULT_LANGUAGE_MODEL, version: '1', bytes: fedgeGptInt8 },
];

export async function registerBundledModels(env: Env, catalog: DurableObjectStub<ModelCatalog>): Promise<void> {
  for (const m of BUNDLED_MODELS) {
    // Already registered (same bytes): publishModel writes nothing.
    const result = await publishModel(env, catalog, {
      model: m.name,
      version: m.version,
      bytes: new Uint8Array(m.bytes),
    });
    if (result.status === 'conflict')
      console.warn(
        `bundled model ${m.name}@${m.version} differs from the stored one (${result.record.sha256}); keeping the stored one`,
      );
  }
}
