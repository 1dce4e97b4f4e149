/**
 * LocalModel generates on the device (onnxruntime-web's WASM build, in Node) with the shared core: greedy text equals
 * the core on onnxruntime-node token for token, the stream adds up to it, leaving the stream early stops the run,
 * and a model that cannot generate says so with a LocalModelError.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { LocalModel, LocalModelError } from '../../../client-sdk/local/local-model.ts';
import { generateText, prepareGeneration } from '../../../federated/generation/generate.ts';
import { readLanguageModel } from '../../../federated/generation/language-model.ts';
import { ortDecoderStep, ortSignatures } from '../../../federated/generation/ort-step.ts';
import { readMetadataProps } from '../../../federated/model/onnx-metadata.ts';
import { tinyLanguageModel } from '../../fixtures/tiny-language-model.ts';
import { readFileSync } from 'node:fs';

const bytes = tinyLanguageModel();

async function onOrtNode(prompt: string, maxTokens: number): Promise<string> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const model = readLanguageModel(
      readMetadataProps(bytes),
      ortSignatures(session.inputNames, session.inputMetadata),
      ortSignatures(session.outputNames, session.outputMetadata),
    );
    const run = prepareGeneration(
      model,
      prompt,
      { maxTokens, temperature: 0 },
      {
        maxPromptTokens: 64,
        maxNewTokens: 64,
        timeoutMs: 60_000,
      },
    );
    return (
      await generateText(
        model,
        ortDecoderStep(ort.Tensor, (f) => session.run(f)),
        run,
      )
    ).text;
  } finally {
    await session.release();
  }
}

describe('LocalModel.generate', () => {
  it('greedy on the device equals the core on onnxruntime-node; the stream adds up to it', async () => {
    const m = await LocalModel.load({ model: 'tiny-lm', bytes, providers: ['wasm'] });
    try {
      expect(m.canGenerate).toBe(true);
      for (const prompt of ['the whale', 'Call me']) {
        const local = await m.generate(prompt, { max_tokens: 20, temperature: 0 });
        expect(local.ranOn).toBe('wasm');
        expect(local.text).toBe(await onOrtNode(prompt, 20));
        let streamed = '';
        for await (const piece of m.generateStream(prompt, { max_tokens: 20, temperature: 0 })) streamed += piece;
        expect(streamed).toBe(local.text);
      }
    } finally {
      await m.release();
    }
  });

  it('stops when the loop is left early, and runs again afterwards', async () => {
    const m = await LocalModel.load({ model: 'tiny-lm', bytes, providers: ['wasm'] });
    try {
      let pieces = 0;
      for await (const _ of m.generateStream('sea', { max_tokens: 40, temperature: 1, seed: 1 }))
        if (++pieces === 2) break;
      expect(pieces).toBe(2);
      const again = await m.generate('sea', { max_tokens: 5, temperature: 0 });
      expect(again.completionTokens).toBeGreaterThan(0);
    } finally {
      await m.release();
    }
  });

  it('refuses with a LocalModelError: a classifier, a bad parameter', async () => {
    const classifier = await LocalModel.load({
      model: 'mnist-mlp',
      bytes: new Uint8Array(readFileSync('models/mnist-mlp/model.int8.onnx')),
      providers: ['wasm'],
    });
    expect(classifier.canGenerate).toBe(false);
    expect(() => classifier.generateStream('hi')).toThrow(LocalModelError);
    await classifier.release();
    const m = await LocalModel.load({ model: 'tiny-lm', bytes, providers: ['wasm'] });
    await expect(m.generate('hi', { temperature: -1 })).rejects.toThrow(/temperature/);
    await m.release();
  });
});
