/**
 * Text generation's bodies and answers: OIP's generate extension (Triton's generate / generate_stream: `text_input`
 * and `parameters` in, `text_output` out) and the OpenAI completions API's subset Fedge serves under /openai/v1.
 */
import { z } from 'zod';
import { MAX_STOP_CHARS, MAX_STOP_SEQUENCES } from '../../../federated/generation/text-stream.ts';
import { named } from './named.ts';

/** Largest generation request body: a prompt of this many bytes is far past any served model's context. */
export const MAX_GENERATE_BODY_BYTES = 64 * 1024;

const stop = z
  .union([z.string().max(MAX_STOP_CHARS), z.array(z.string().min(1).max(MAX_STOP_CHARS)).max(MAX_STOP_SEQUENCES)])
  .describe(
    `text that ends the output before it: one string or up to ${MAX_STOP_SEQUENCES}, each ≤ ${MAX_STOP_CHARS} characters`,
  );
const maxTokens = z.number().int().min(1).describe('new tokens at most (FEDGE_MAX_NEW_TOKENS bounds it)');
const temperature = z.number().min(0).max(100).describe('0: greedy (deterministic); higher: more random');
const topP = z.number().gt(0).max(1).describe('nucleus sampling: the most likely tokens adding up to this probability');
const seed = z.number().int().describe('makes sampling reproducible');

export const generateRequest = named(
  'GenerateRequest',
  z.strictObject({
    text_input: z.string().min(1).describe('the prompt'),
    id: z.string().max(256).optional(),
    parameters: z
      .strictObject({
        max_tokens: maxTokens.optional(),
        temperature: temperature.optional(),
        top_k: z.number().int().min(0).optional().describe('sample from the k most likely tokens (0: all)'),
        top_p: topP.optional(),
        stop: stop.optional(),
        seed: seed.optional(),
      })
      .optional()
      .describe("absent fields take the model's generation_config.json defaults (greedy unless it says do_sample)"),
  }),
);

const finishReason = z
  .enum(['stop', 'length'])
  .describe(
    "stop: the model's end of sequence or a stop sequence; length: max_tokens, the model's context or the time limit",
  );
const details = z.looseObject({
  finish_reason: finishReason,
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
});

export const generateResponse = named(
  'GenerateResponse',
  z.looseObject({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    text_output: z.string(),
    details,
  }),
);

export const generateEvent = named(
  'GenerateStreamEvent',
  z.looseObject({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    text_output: z.string().describe('the text since the previous event'),
    done: z.boolean().describe('true on the last event, which carries details'),
    details: details.optional(),
    error: z.string().optional().describe('set on a last event when the generation failed after the stream began'),
  }),
);

export const completionRequest = named(
  'CompletionRequest',
  z.looseObject({
    model: z.string().min(1).describe('a served model (its latest), or model:version (a version or alias)'),
    prompt: z.union([z.string().min(1), z.array(z.string().min(1)).length(1)]),
    max_tokens: maxTokens.optional().describe('default 16, as OpenAI'),
    temperature: temperature.optional().describe('default 1, as OpenAI'),
    top_p: topP.optional(),
    stop: stop.nullable().optional(),
    seed: seed.nullable().optional(),
    stream: z.boolean().nullable().optional(),
    n: z.literal(1).nullable().optional().describe('only 1'),
    user: z.string().optional(),
  }),
);

const usage = z.looseObject({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
});

export const completion = named(
  'Completion',
  z.looseObject({
    id: z.string(),
    object: z.literal('text_completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.looseObject({
        index: z.literal(0),
        text: z.string(),
        finish_reason: finishReason.nullable().describe('null on streamed chunks before the last'),
        logprobs: z.null(),
      }),
    ),
    usage: usage.optional().describe('on the answer, and on the last streamed chunk'),
  }),
);

export const openaiModelList = named(
  'OpenAIModelList',
  z.looseObject({
    object: z.literal('list'),
    data: z.array(
      z.looseObject({
        id: z
          .string()
          .describe("the model's name (its latest), and model:version for each version and alias that can generate"),
        object: z.literal('model'),
        created: z.number().int(),
        owned_by: z.string(),
      }),
    ),
  }),
);
