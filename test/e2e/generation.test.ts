/**
 * Text generation against the real local edge (npm start's server on workerd), as users call it: the official
 * `openai` npm client pointed at /openai/v1, EdgeClient, and LocalModel on the device (onnxruntime-web in Node). Greedy
 * text from the edge equals an independent reference loop (onnxruntime-node on the same bytes, no cache, its own
 * argmax, the tokenizer) token for token, and the device's; with the default limits (64 MiB of WASM heap, 8
 * generations at once) eight streams run together, a ninth is refused with 429 and Retry-After, and a client that
 * goes away stops its generation and frees its slot.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeClient } from '../../client-sdk/edge/edge-client.ts';
import { LocalModel } from '../../client-sdk/local/local-model.ts';
import { readMetadataProps } from '../../federated/model/onnx-metadata.ts';
import { loadTokenizer } from '../../federated/text/tokenizer.ts';
import { FP32_COMPUTE } from '../../models/fedge-gpt/reference-check.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';

const MODEL = 'fedge-gpt';
const state = mkdtempSync(join(tmpdir(), 'fedge-generate-'));
let server: LocalServer;
let edge: EdgeClient;
let openai: OpenAI;

beforeAll(async () => {
  server = await startLocalServer({ persistTo: state });
  edge = new EdgeClient({ url: server.url, adminToken: 'dev-admin-token' });
  openai = new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: 'not-needed', maxRetries: 0 });
});
afterAll(async () => {
  await server?.stop();
  rmSync(state, { recursive: true, force: true });
});

/** The reference: re-run the whole sequence each step on onnxruntime-node, argmax of the last row, stop at eos. */
async function referenceGreedy(bytes: Uint8Array, prompt: string, n: number): Promise<string> {
  const props = readMetadataProps(bytes);
  const tokenizer = loadTokenizer(props['tokenizer.json']!);
  const eos = JSON.parse(props['generation_config.json']!).eos_token_id as number;
  const session = await ort.InferenceSession.create(bytes, FP32_COMPUTE);
  try {
    const meta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key') as unknown as {
      shape: number[];
    };
    const [, heads, , headDim] = meta.shape;
    const layers = session.inputNames.filter((s) => s.startsWith('past_key_values.')).length / 2;
    const promptIds = tokenizer.encode(prompt, { addSpecialTokens: true });
    const ids = [...promptIds];
    for (let k = 0; k < n; k++) {
      const i64 = (v: number[]) => BigInt64Array.from(v.map(BigInt));
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', i64(ids), [1, ids.length]),
        attention_mask: new ort.Tensor('int64', i64(ids.map(() => 1)), [1, ids.length]),
        position_ids: new ort.Tensor('int64', i64(ids.map((_, i) => i)), [1, ids.length]),
      };
      for (let i = 0; i < layers; i++)
        for (const part of ['key', 'value'])
          feeds[`past_key_values.${i}.${part}`] = new ort.Tensor('float32', new Float32Array(0), [
            1,
            heads!,
            0,
            headDim!,
          ]);
      const logits = (await session.run(feeds)).logits!;
      const V = logits.dims[2]!;
      const row = (logits.data as Float32Array).subarray((ids.length - 1) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
      if (best === eos) break;
      ids.push(best);
    }
    const context = promptIds.slice(-4);
    const full = tokenizer.decode([...context, ...ids.slice(promptIds.length)]);
    return full.slice(tokenizer.decode(context).length);
  } finally {
    await session.release();
  }
}

describe('any decoder in the with-past layout', () => {
  it("a LLaMA-style decoder exported by PyTorch generates PyTorch's greedy text once fedge pack put its tokenizer inside", async () => {
    const dir = 'test/fixtures/third-party/pt-gpt-tiny';
    const packed = join(state, 'pt-gpt-tiny.onnx');
    const { stdout } = await promisify(execFile)(process.execPath, [
      'cli/fedge.ts',
      'pack',
      `${dir}/model.onnx`,
      '--tokenizer',
      `${dir}/tokenizer.json`,
      '--generation-config',
      `${dir}/generation_config.json`,
      packed,
    ]);
    expect(stdout).toMatch(/2 layers, 4096 tokens, eos \[2\]/);
    const record = await edge.uploadModel('pt-gpt-tiny', '1', new Uint8Array(readFileSync(packed)));
    expect(record.textGeneration).toMatchObject({ layers: 2, vocabSize: 4096 });
    const reference = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as {
      prompts: { text: string; greedy: number[]; greedy_text: string }[];
    };
    for (const p of reference.prompts) {
      const r = await edge.generate('pt-gpt-tiny', p.text, { max_tokens: p.greedy.length, temperature: 0 });
      expect(r.details.completion_tokens).toBe(p.greedy.length);
      expect(r.text_output.trim()).toBe(p.greedy_text.trim());
    }
  });
});

describe('the default language model at the edge', () => {
  const prompt = 'The Congress of the United States';

  it('greedy text equals an independent reference loop, the OpenAI client, the stream and the device', async () => {
    const edgeText = (await edge.generate(MODEL, prompt, { max_tokens: 24, temperature: 0 })).text_output;
    expect(edgeText.length).toBeGreaterThan(10);
    const { bytes } = await edge.modelBytes(MODEL);
    expect(edgeText).toBe(await referenceGreedy(bytes, prompt, 24));

    const completion = await openai.completions.create({ model: MODEL, prompt, max_tokens: 24, temperature: 0 });
    expect(completion.choices[0]!.text).toBe(edgeText);
    expect(completion.usage!.completion_tokens).toBeLessThanOrEqual(24);

    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of await openai.completions.create({
      model: MODEL,
      prompt,
      max_tokens: 24,
      temperature: 0,
      stream: true,
    })) {
      streamed += chunk.choices[0]!.text;
      finish = chunk.choices[0]!.finish_reason ?? finish;
    }
    expect(streamed).toBe(edgeText);
    expect(finish).toBe(completion.choices[0]!.finish_reason);

    let pieces = '';
    for await (const p of edge.generateStream(MODEL, prompt, { max_tokens: 24, temperature: 0 })) pieces += p;
    expect(pieces).toBe(edgeText);

    const device = await LocalModel.load({ client: edge, model: MODEL, providers: ['wasm'], cache: false });
    try {
      expect((await device.generate(prompt, { max_tokens: 24, temperature: 0 })).text).toBe(edgeText);
    } finally {
      await device.release();
    }
  });

  it('lists the model for the OpenAI client, and answers its errors as the client expects', async () => {
    const ids = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining([MODEL, `${MODEL}:1`]));
    await expect(openai.completions.create({ model: 'mnist-mlp', prompt: 'hi' })).rejects.toMatchObject({
      status: 400,
    });
    await expect(openai.completions.create({ model: MODEL, prompt: 'hi', max_tokens: 1e9 })).rejects.toMatchObject({
      status: 400,
    });
  });

  it('runs eight streams at once with the default limits, refuses a ninth (429), and a client that goes away frees its slot', async () => {
    const metric = async (pattern: RegExp) => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(pattern.exec(text)?.[1] ?? 0);
    };
    const aborted = /fedge_generations_total\{model="fedge-gpt",finish_reason="aborted"\} (\d+)/;
    const before = await metric(aborted);
    const open = async (seed: number) => {
      const abort = new AbortController();
      const res = await fetch(`${server.url}/v2/models/${MODEL}/generate_stream`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text_input: prompt, parameters: { max_tokens: 255, temperature: 1, seed } }),
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      await reader.read(); // the first event: this generation runs
      return { abort: () => abort.abort(), reader };
    };
    // Opened together: eight streams share the isolate token by token, so each runs for seconds.
    const streams = await Promise.all(Array.from({ length: 8 }, (_, k) => open(k)));
    const ninth = () =>
      fetch(`${server.url}/v2/models/${MODEL}/generate`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text_input: 'a', parameters: { max_tokens: 4 } }),
      });
    const refused = await ninth();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('Retry-After')).toBe('1');
    expect(((await refused.json()) as { error: string }).error).toMatch(/8 generations are already running/);

    // One client goes away: its slot comes back at once, the other seven keep streaming.
    streams[0]!.abort();
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ok = (await metric(aborted)) === before + 1;
    }
    expect(ok).toBe(true);
    expect((await ninth()).status).toBe(200);
    const next = await streams[1]!.reader.read();
    expect(next.done).toBe(false);

    for (const s of streams.slice(1)) s.abort();
    let running = 1;
    for (let i = 0; i < 100 && running > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      running = await metric(/fedge_generations_running (\d+)/);
    }
    expect(running).toBe(0);
    expect(await metric(aborted)).toBe(before + 8);
  });
});
