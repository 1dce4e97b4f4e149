/**
 * `fedge pack <model.onnx> --tokenizer tokenizer.json [--generation-config g.json] [--tokenizer-config t.json] <out.onnx>`:
 * puts a decoder's Hugging Face files into its ONNX `metadata_props` (federated/generation/language-model.ts), so the
 * model is one file that the edge and devices generate with. Checks before writing: the graph is a decoder in
 * Optimum's with-past layout, the tokenizer loads and fits the logits, and a few greedy tokens come out
 * (onnxruntime-web, as the edge runs it). The graph's bytes are copied untouched.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { readMetadataProps, withMetadataProps } from '../federated/model/onnx-metadata.ts';
import {
  GENERATION_CONFIG_PROP,
  TOKENIZER_CONFIG_PROP,
  TOKENIZER_PROP,
  readLanguageModel,
} from '../federated/generation/language-model.ts';
import { generateText, prepareGeneration } from '../federated/generation/generate.ts';
import { ortDecoderStep, ortSignatures } from '../federated/generation/ort-step.ts';
import { UsageError } from './usage-error.ts';
import { writeAtomically } from './write-atomically.ts';

const FLAGS: Record<string, string> = {
  '--tokenizer': TOKENIZER_PROP,
  '--generation-config': GENERATION_CONFIG_PROP,
  '--tokenizer-config': TOKENIZER_CONFIG_PROP,
};

function parse(args: string[]) {
  const files: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const [flag, inline] = a.split('=', 2) as [string, string | undefined];
      const prop = FLAGS[flag];
      if (!prop) throw new UsageError(`unknown option ${flag}`);
      const value = inline ?? args[++i];
      if (!value) throw new UsageError(`${flag} needs a file`);
      files[prop] = value;
    } else positional.push(a);
  }
  if (positional.length !== 2) throw new UsageError('give the model to pack and the file to write');
  if (!files[TOKENIZER_PROP]) throw new UsageError('--tokenizer is required');
  return { input: positional[0]!, output: positional[1]!, files };
}

export async function packCommand(args: string[]): Promise<void> {
  const { input, output, files } = parse(args);
  const props: Record<string, string> = {};
  for (const [prop, path] of Object.entries(files)) props[prop] = readFileSync(path, 'utf8');
  const bytes = withMetadataProps(new Uint8Array(readFileSync(input)), props);
  const session = await ort.InferenceSession.create(bytes).catch((e: Error) => {
    throw new Error(`${input} does not load in onnxruntime-web: ${e.message}`);
  });
  try {
    const model = readLanguageModel(
      readMetadataProps(bytes),
      ortSignatures(session.inputNames, session.inputMetadata),
      ortSignatures(session.outputNames, session.outputMetadata),
    );
    const step = ortDecoderStep(ort.Tensor, (feeds) => session.run(feeds));
    const run = prepareGeneration(
      model,
      'The',
      { maxTokens: 8, temperature: 0 },
      {
        maxPromptTokens: 64,
        maxNewTokens: 8,
        timeoutMs: 60_000,
      },
    );
    const sample = await generateText(model, step, run);
    writeAtomically(output, bytes);
    console.log(
      `${output}: ${model.layout.layers} layers, ${model.tokenizer.vocabSize} tokens, eos ${JSON.stringify(model.config.eosTokenIds)}; greedy from "The": ${JSON.stringify(sample.text)}`,
    );
  } finally {
    await session.release();
  }
}
