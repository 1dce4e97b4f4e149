/**
 * Text generation over HTTP: OIP's generate extension (Triton's generate and generate_stream) and the OpenAI
 * completions API under /openai/v1. The generation itself is functions/generation; here, the bodies' shapes and the
 * framing — JSON, or server-sent events whose end (the client went away) stops the decode loop.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { generationRoutes } from '../contract/generation.ts';
import type { RouteContext } from './register.ts';
import { type EdgeGeneration, startGeneration } from '../generation/edge-generation.ts';
import { services } from '../services.ts';
import type { GenerateParams, GenerationResult } from '../../federated/generation/generate.ts';
import { fromParameters } from '../../federated/generation/oip-parameters.ts';
import { fail } from '../middleware/errors.ts';
import type { Handlers } from './register.ts';

type Ctx = Context<{ Bindings: Env }>;
type GenerateCtx = RouteContext<(typeof generationRoutes)['generateLatest']>;
type CompletionCtx = RouteContext<(typeof generationRoutes)['openaiCompletions']>;

const finishReason = (r: GenerationResult) => (r.finishReason === 'stop' ? 'stop' : 'length');

/**
 * Ends when the client goes away — the response stream is cancelled, or the request's signal aborts (workerd's
 * `enable_request_signal`: a socket that closed while nothing was being pulled cancels no stream) — or when the
 * generation's wall time has passed. A write the reader never takes is raced against it, so a generation is never held
 * by a client that stopped reading: its slot comes back.
 */
function streamEnd(c: Context, stream: { onAbort(f: () => void): void }, timeoutMs: number) {
  const abort = new AbortController();
  const end = () => abort.abort();
  stream.onAbort(end);
  c.req.raw.signal?.addEventListener('abort', end, { once: true });
  const timer = setTimeout(end, timeoutMs);
  const ended = new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }));
  return {
    signal: abort.signal,
    /** `write`, unless the stream ends first. */
    write: (write: Promise<unknown>) => Promise.race([write, ended]),
    done: () => clearTimeout(timer),
  };
}

async function oipGenerate(c: GenerateCtx, ref: string | undefined, streamed: boolean) {
  const body = c.var.body;
  const generation = await startGeneration(
    c.env,
    c.req.param('name')!,
    ref,
    body.text_input,
    fromParameters(body.parameters),
  );
  const head = {
    model_name: generation.record.model,
    model_version: generation.record.version,
    ...(body.id !== undefined && { id: body.id }),
  };
  const details = (r: GenerationResult) => ({
    finish_reason: finishReason(r),
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
  });
  if (!streamed) {
    const result = await generation.run({ signal: c.req.raw.signal });
    return c.json({ ...head, text_output: result.text, details: details(result) });
  }
  return streamText(c, generation, {
    piece: (text) => JSON.stringify({ ...head, text_output: text, done: false }),
    end: (result) => [JSON.stringify({ ...head, text_output: '', done: true, details: details(result) })],
    error: (message) => JSON.stringify({ ...head, text_output: '', done: true, error: message }),
  });
}

/** What a stream sends: an event per piece of text, the events that end it, and the event of a failure. */
interface StreamEvents {
  piece(text: string): string;
  end(result: GenerationResult): string[];
  error(message: string): string;
}

/**
 * Runs `generation` as server-sent events: one per piece of text as it becomes final, then `events.end` — nothing more
 * when the client went away. A failure after the first byte (the status is sent) ends the stream with `events.error`.
 */
function streamText<E extends { Bindings: Env }>(
  c: Context<E>,
  generation: EdgeGeneration,
  events: StreamEvents,
): Response {
  const { config } = services(c.env);
  return streamSSE(
    c,
    async (stream) => {
      // Past the generation's own limit, a write still waiting means the reader stopped reading.
      const end = streamEnd(c, stream, config.generateTimeoutMs + 5_000);
      const send = (data: string) => end.write(stream.writeSSE({ data }));
      // One event in flight while the next token is computed: the write of a piece overlaps the next step, and a
      // reader that stops taking events still holds the loop after one.
      let sending: Promise<unknown> = Promise.resolve();
      try {
        const result = await generation.run({
          signal: end.signal,
          onChunk: async (chunk) => {
            if (!chunk.text) return;
            await sending;
            sending = send(events.piece(chunk.text));
          },
        });
        await sending;
        if (result.finishReason !== 'aborted') for (const data of events.end(result)) await send(data);
      } finally {
        end.done();
      }
    },
    async (e, stream) => {
      generation.cancel();
      console.error('generation failed mid-stream:', e.stack ?? e);
      await stream.writeSSE({ data: events.error(`the generation failed: ${e.message}`) });
    },
  );
}

/** OpenAI's `model`: a served model (its latest) or model:version. */
function modelRef(model: string): [string, string | undefined] {
  const at = model.indexOf(':');
  return at < 0 ? [model, undefined] : [model.slice(0, at), model.slice(at + 1)];
}

async function completions(c: CompletionCtx) {
  const body = c.var.body;
  const [name, ref] = modelRef(body.model);
  const prompt = typeof body.prompt === 'string' ? body.prompt : body.prompt[0]!;
  const params: GenerateParams = {
    maxTokens: body.max_tokens ?? 16,
    temperature: body.temperature ?? 1,
    topP: body.top_p,
    stop: body.stop ?? undefined,
    seed: body.seed ?? undefined,
  };
  const generation = await startGeneration(c.env, name, ref, prompt, params);
  const head = {
    id: `cmpl-${crypto.randomUUID().replaceAll('-', '')}`,
    object: 'text_completion' as const,
    created: Math.floor(Date.now() / 1000),
    model: body.model,
  };
  const usage = (r: GenerationResult) => ({
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
  });
  const choice = (text: string, finish: string | null) => ({ index: 0, text, finish_reason: finish, logprobs: null });
  if (!body.stream) {
    const result = await generation.run({ signal: c.req.raw.signal });
    return c.json({ ...head, choices: [choice(result.text, finishReason(result))], usage: usage(result) });
  }
  return streamText(c, generation, {
    piece: (text) => JSON.stringify({ ...head, choices: [choice(text, null)] }),
    end: (result) => [
      JSON.stringify({ ...head, choices: [choice('', finishReason(result))], usage: usage(result) }),
      '[DONE]',
    ],
    error: (message) => JSON.stringify({ error: { message, type: 'server_error' } }),
  });
}

/** Every version (and latest) that can generate, as OpenAI lists models. */
async function openaiModels(c: Ctx) {
  const { registry } = services(c.env);
  const data: { id: string; object: 'model'; created: number; owned_by: string }[] = [];
  for (const summary of await registry.listModels()) {
    const latest = summary.aliases.latest;
    for (const version of summary.versions) {
      const record = await registry.resolve(summary.name, version);
      if (!record.textGeneration) continue;
      const entry = {
        object: 'model' as const,
        created: Math.floor(Date.parse(record.createdAt) / 1000),
        owned_by: 'fedge',
      };
      if (version === latest) data.push({ id: summary.name, ...entry });
      data.push({ id: `${summary.name}:${version}`, ...entry });
    }
  }
  return c.json({ object: 'list' as const, data });
}

const version = (c: GenerateCtx) => {
  const v = c.req.param('version');
  if (!v) fail(404, 'no version in the path');
  return v;
};

export const generationHandlers: Handlers<typeof generationRoutes> = {
  generateLatest: (c) => oipGenerate(c, undefined, false),
  generateVersion: (c) => oipGenerate(c, version(c), false),
  generateStreamLatest: (c) => oipGenerate(c, undefined, true),
  generateStreamVersion: (c) => oipGenerate(c, version(c), true),
  openaiCompletions: (c) => completions(c),
  openaiModels: (c) => openaiModels(c),
};
