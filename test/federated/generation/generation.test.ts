/**
 * The shared generation core against independent references: greedy decoding with the key/value cache equals a
 * plain loop that re-runs the whole text every step (onnxruntime-node, no cache, its own argmax); seeded sampling
 * repeats; top-k / top-p never pick outside their set; streamed chunks add up to the text and hold back what a stop
 * sequence or an unfinished character may still change.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateText, prepareGeneration } from '../../../federated/generation/generate.ts';
import { type LanguageModel, readLanguageModel } from '../../../federated/generation/language-model.ts';
import { ortDecoderStep, ortSignatures } from '../../../federated/generation/ort-step.ts';
import { pickToken } from '../../../federated/generation/sampling.ts';
import { perplexity, scoreNextTokens } from '../../../federated/generation/language-metrics.ts';
import { TextStream } from '../../../federated/generation/text-stream.ts';
import { readMetadataProps } from '../../../federated/model/onnx-metadata.ts';
import { seededRandom } from '../../../federated/seeded-random.ts';
import { loadTokenizer } from '../../../federated/text/tokenizer.ts';
import { charTokenizerJson, tinyLanguageModel, tinyLanguageSpec } from '../../fixtures/tiny-language-model.ts';

const LIMITS = { maxPromptTokens: 64, maxNewTokens: 64, timeoutMs: 60_000 };

let session: ort.InferenceSession;
let model: LanguageModel;
const bytes = tinyLanguageModel();

beforeAll(async () => {
  session = await ort.InferenceSession.create(bytes);
  model = readLanguageModel(
    readMetadataProps(bytes),
    ortSignatures(session.inputNames, session.inputMetadata),
    ortSignatures(session.outputNames, session.outputMetadata),
  );
});
afterAll(() => session?.release());

const step = () => ortDecoderStep(ort.Tensor, (feeds) => session.run(feeds));

/** The reference: the whole sequence through the graph each step (past length 0), argmax of the last row. */
async function referenceGreedy(promptIds: number[], n: number): Promise<number[]> {
  const { layers, heads } = tinyLanguageSpec;
  const hd = tinyLanguageSpec.embedDim / heads;
  const ids = [...promptIds];
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, ids.length]),
    };
    for (let i = 0; i < layers; i++)
      for (const part of ['key', 'value'])
        feeds[`past_key_values.${i}.${part}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, hd]);
    const logits = (await session.run(feeds)).logits!;
    const V = logits.dims[2]!;
    const row = (logits.data as Float32Array).subarray((ids.length - 1) * V, ids.length * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
    if (best === tinyLanguageSpec.eosTokenId) break;
    out.push(best);
    ids.push(best);
  }
  return out;
}

describe('decode loop', () => {
  it('greedy with the cache equals re-running the whole text, token for token', async () => {
    for (const prompt of ['the whale', 'Call me Ishmael.', 'a']) {
      const run = prepareGeneration(model, prompt, { maxTokens: 30, temperature: 0 }, LIMITS);
      const tokenizer = model.tokenizer;
      const result = await generateText(model, step(), run);
      const reference = await referenceGreedy(run.promptIds, 30);
      expect(result.completionTokens).toBe(reference.length);
      expect(result.text).toBe(
        tokenizer
          .decode([...run.promptIds.slice(-4), ...reference])
          .slice(tokenizer.decode(run.promptIds.slice(-4)).length),
      );
    }
  });

  it('cuts the answer at the context and says "length"', async () => {
    const prompt = 'x'.repeat(40); // 41 tokens with the leading ▁; the context holds 48
    const run = prepareGeneration(model, prompt, { maxTokens: 50 }, { ...LIMITS, maxNewTokens: 64 });
    expect(run.maxNewTokens).toBe(tinyLanguageSpec.contextLength - 41);
  });

  it('seeded sampling repeats; chunks add up to the text', async () => {
    const go = async (seed: number) => {
      const chunks: string[] = [];
      const r = await generateText(
        model,
        step(),
        prepareGeneration(model, 'sea', { maxTokens: 25, temperature: 1.2, topP: 0.9, seed }, LIMITS),
        { onChunk: (c) => void chunks.push(c.text) },
      );
      expect(chunks.join('')).toBe(r.text);
      return r.text;
    };
    expect(await go(11)).toBe(await go(11));
  });

  it('stops when the signal aborts', async () => {
    const abort = new AbortController();
    let chunks = 0;
    const r = await generateText(
      model,
      step(),
      prepareGeneration(model, 'sea', { maxTokens: 40, temperature: 1 }, LIMITS),
      {
        signal: abort.signal,
        onChunk: () => {
          if (++chunks === 2) abort.abort();
        },
      },
    );
    expect(r.finishReason).toBe('aborted');
    expect(r.completionTokens).toBeLessThan(40);
  });
});

describe('sampling', () => {
  const logits = Float32Array.from([0.5, 3, 3, -1, 2.5, 0]);
  it('greedy is the argmax, ties to the lowest id', () => {
    expect(pickToken(logits, { temperature: 0, topK: 0, topP: 1 }, Math.random)).toBe(1);
  });
  it('top-k and top-p never leave their set', () => {
    const random = seededRandom(1);
    for (let i = 0; i < 500; i++) {
      expect([1, 2]).toContain(pickToken(logits, { temperature: 1, topK: 2, topP: 1 }, random));
      // p(1) = p(2) ≈ 0.39, p(4) ≈ 0.24: top_p 0.7 keeps exactly {1, 2}.
      expect([1, 2]).toContain(pickToken(logits, { temperature: 1, topK: 0, topP: 0.7 }, random));
    }
  });
  it('temperature 1 draws by the softmax', () => {
    const random = seededRandom(2);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 20_000; i++) counts[pickToken(logits, { temperature: 1, topK: 0, topP: 1 }, random)]++;
    const z = [...logits].reduce((a, l) => a + Math.exp(l), 0);
    counts.forEach((c, k) => expect(c / 20_000).toBeCloseTo(Math.exp(logits[k]!) / z, 1));
  });
});

describe('text stream', () => {
  const tokenizer = loadTokenizer(charTokenizerJson());
  const ids = (s: string) => tokenizer.encode(s).slice(1); // without the leading ▁ of the dummy prefix
  it('holds back a possible start of a stop sequence and ends before it', () => {
    const s = new TextStream(tokenizer, tokenizer.encode('say'), ['END']);
    const got: string[] = [];
    for (const id of ids('abcENxEND')) {
      const r = s.push(id);
      got.push(r.chunk);
      if (r.stopped) break;
    }
    expect(got).toEqual(['a', 'b', 'c', '', '', 'ENx', '', '', '']);
    expect(s.text).toBe('abcENx');
  });
  it('keeps the space a word starts with after the prompt', () => {
    const s = new TextStream(tokenizer, tokenizer.encode('the'), []);
    for (const id of tokenizer.encode(' whale').slice(1)) s.push(id);
    expect(s.text + s.flush()).toBe(' whale');
  });
});

describe('next-token metrics', () => {
  it('scores uniform logits at perplexity V and counts the argmax hits', () => {
    const V = 8;
    const uniform = new Float32Array(3 * V);
    const s = scoreNextTokens(uniform, V, [1, 2, 3]);
    expect(perplexity(s)).toBeCloseTo(V, 5);
    const peaked = new Float32Array(2 * V);
    peaked[5] = 10; // row 0 predicts 5
    peaked[V + 1] = 10; // row 1 predicts 1
    const t = scoreNextTokens(peaked, V, [5, 2]);
    expect(t.correct).toBe(1);
    expect(t.nll).toBeCloseTo(Math.log(1 + 7 * Math.exp(-10)) + (10 + Math.log(1 + 7 * Math.exp(-10))), 4);
  });
});
