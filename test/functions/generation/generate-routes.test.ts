/**
 * Text generation inside workerd: a tiny language model built and packed in the test, uploaded like any model, then
 * OIP generate / generate_stream and the OpenAI-compatible routes — determinism, seeds, stop sequences, SSE framing —
 * and every refusal a careless or hostile caller meets, with nothing stored by a refused upload.
 */
import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, upload, uploadOk, uniqueName } from '../helpers.ts';
import { charTokenizerJson, tinyLanguageModel } from '../../fixtures/tiny-language-model.ts';

const post = (path: string, body: unknown) =>
  SELF.fetch(`http://edge${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** The `data:` payloads of an SSE body, in order. */
async function events(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim())
    .map((block) =>
      block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n'),
    );
}

const model = uniqueName('tiny-lm');
beforeAll(async () => {
  await uploadOk(model, '1', tinyLanguageModel());
});

describe('OIP generate', () => {
  it('says in the metadata that the version can generate', async () => {
    const meta = (await (await SELF.fetch(`http://edge/v2/models/${model}`)).json()) as any;
    expect(meta.parameters.text_generation).toMatchObject({ layers: 2, contextLength: 48 });
  });

  it('decodes greedily and deterministically, and reports why it stopped', async () => {
    const body = { text_input: 'the ship', parameters: { max_tokens: 12, temperature: 0 } };
    const a = (await (await post(`/v2/models/${model}/generate`, body)).json()) as any;
    const b = (await (await post(`/v2/models/${model}/versions/1/generate`, body)).json()) as any;
    expect(a).toMatchObject({ model_name: model, model_version: '1' });
    expect(a.text_output.length).toBeGreaterThan(0);
    expect(b.text_output).toBe(a.text_output);
    expect(a.details.prompt_tokens).toBe(9); // ▁the▁ship, one character a token
    expect(a.details.completion_tokens).toBeLessThanOrEqual(12);
    expect(['length', 'stop']).toContain(a.details.finish_reason);
  });

  it('samples reproducibly with a seed, and differently without one', async () => {
    const ask = (seed?: number) =>
      post(`/v2/models/${model}/generate`, {
        text_input: 'a',
        parameters: { max_tokens: 20, temperature: 1.5, ...(seed !== undefined && { seed }) },
      }).then((r) => r.json() as Promise<any>);
    const [x, y] = [await ask(7), await ask(7)];
    expect(y.text_output).toBe(x.text_output);
    const others = new Set<string>();
    for (let i = 0; i < 4; i++) others.add((await ask()).text_output);
    expect(others.size).toBeGreaterThan(1);
  });

  it('ends before a stop sequence', async () => {
    const free = (await (
      await post(`/v2/models/${model}/generate`, { text_input: 'x', parameters: { max_tokens: 30, temperature: 0 } })
    ).json()) as any;
    const text: string = free.text_output;
    expect(text.length).toBeGreaterThan(6);
    const stop = text.slice(4, 6);
    const cut = (await (
      await post(`/v2/models/${model}/generate`, {
        text_input: 'x',
        parameters: { max_tokens: 30, temperature: 0, stop: [stop] },
      })
    ).json()) as any;
    expect(cut.text_output).toBe(text.slice(0, text.indexOf(stop)));
    expect(cut.details.finish_reason).toBe('stop');
  });

  it('streams the same text as server-sent events, done on the last', async () => {
    const body = { text_input: 'the ship', parameters: { max_tokens: 12, temperature: 0 } };
    const whole = (await (await post(`/v2/models/${model}/generate`, body)).json()) as any;
    const res = await post(`/v2/models/${model}/generate_stream`, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const parsed = (await events(res)).map((d) => JSON.parse(d));
    expect(parsed.length).toBeGreaterThan(1);
    expect(parsed.slice(0, -1).every((e) => e.done === false && e.model_name === model)).toBe(true);
    const last = parsed.at(-1);
    expect(last.done).toBe(true);
    expect(last.details).toEqual(whole.details);
    expect(parsed.map((e) => e.text_output).join('')).toBe(whole.text_output);
  });
});

describe('OpenAI-compatible routes', () => {
  it('lists the language models, and not the classifiers', async () => {
    const list = (await (await SELF.fetch('http://edge/openai/v1/models')).json()) as any;
    expect(list.object).toBe('list');
    const ids = list.data.map((m: any) => m.id);
    expect(ids).toEqual(expect.arrayContaining([model, `${model}:1`]));
    expect(ids).not.toContain('mnist-mlp');
  });

  it('completes, and streams chunks then [DONE]', async () => {
    const body = { model, prompt: 'the ship', max_tokens: 10, temperature: 0 };
    const done = (await (await post('/openai/v1/completions', body)).json()) as any;
    expect(done).toMatchObject({ object: 'text_completion', model, choices: [{ index: 0, logprobs: null }] });
    expect(done.usage.total_tokens).toBe(done.usage.prompt_tokens + done.usage.completion_tokens);
    const data = await events(await post('/openai/v1/completions', { ...body, model: `${model}:1`, stream: true }));
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(done.choices[0].text);
    expect(chunks.at(-1).choices[0].finish_reason).toBe(done.choices[0].finish_reason);
  });
});

describe('refusals', () => {
  const generate = (body: unknown) => post(`/v2/models/${model}/generate`, body);
  const refused = async (res: Response, status: number, pattern: RegExp) => {
    expect(res.status).toBe(status);
    expect(((await res.json()) as any).error).toMatch(pattern);
  };

  it('refuses bad requests with a 4xx that says why', async () => {
    await refused(await generate({}), 400, /text_input/);
    await refused(await generate({ text_input: '' }), 400, /text_input/);
    await refused(await generate({ text_input: 'a', parameters: { max_tokens: 1e9 } }), 400, /max_tokens/);
    await refused(await generate({ text_input: 'a', parameters: { temperature: -1 } }), 400, /temperature/);
    await refused(await generate({ text_input: 'a', parameters: { stop: ['a', 'b', 'c', 'd', 'e'] } }), 400, /stop/);
    await refused(await generate({ text_input: 'a', parameters: { beams: 4 } }), 400, /beams/);
    await refused(await generate({ text_input: 'a'.repeat(60) }), 400, /context holds 48/);
    await refused(await generate({ text_input: 'x'.repeat(1_000_000) }), 413, /too large|larger/);
    await refused(await post('/v2/models/mnist-mlp/generate', { text_input: 'hello' }), 400, /cannot generate/);
    await refused(await post('/v2/models/no-such-lm/generate', { text_input: 'hello' }), 404, /no-such-lm/);
    await refused(await post('/openai/v1/completions', { model: 'mnist-mlp', prompt: 'hi' }), 400, /cannot generate/);
    await refused(await post('/openai/v1/completions', { model, prompt: 'hi', n: 3 }), 400, /n/);
  });

  it('refuses an upload whose tokenizer is malformed or not the model’s, and stores nothing', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'tokenizer.json': '{"model": ' }, /not JSON/],
      [{ 'tokenizer.json': '{"model": {"type": "WordLevel", "vocab": {}}}' }, /model type/],
      [
        {
          'tokenizer.json': charTokenizerJson()
            .replace('"vocab":[', `"vocab":[${'["zz",-9],'.repeat(0)}["extra-1",-9],`)
            .replace('"vocab":[', `"vocab":[${Array.from({ length: 40 }, (_, i) => `["x${i}",-9]`).join(',')},`),
        },
        /token ids but the model's logits have/,
      ],
      [{ 'generation_config.json': '{"eos_token_id": 100000}' }, /eos_token_id/],
    ];
    for (const [props, pattern] of cases) {
      const name = uniqueName('bad-lm');
      const res = await upload(name, '1', tinyLanguageModel(props));
      expect(res.status, JSON.stringify(props).slice(0, 60)).toBe(400);
      expect(((await res.json()) as any).error).toMatch(pattern);
      expect((await SELF.fetch(`http://edge/v2/models/${name}`)).status).toBe(404);
    }
    expect((await SELF.fetch('http://edge/v1/models', { headers: ADMIN })).status).toBeLessThan(500);
  });
});
