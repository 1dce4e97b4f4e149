/**
 * Text generation: OIP's generate extension, each route for a model's `latest` and for a version (or alias), and the
 * OpenAI-compatible surface under /openai/v1 (KServe's prefix: it never collides with Fedge's own /v1).
 */
import * as G from './schemas/generation.ts';
import { MAX_GENERATE_BODY_BYTES } from './schemas/generation.ts';
import { type Errors, type Route, defineRoutes } from './route.ts';

const TAG = 'Text generation' as const;

const LIMITS =
  'Limits (Worker variables): FEDGE_MAX_PROMPT_TOKENS, FEDGE_MAX_NEW_TOKENS, FEDGE_MAX_GENERATIONS (at once per isolate) and FEDGE_GENERATE_TIMEOUT_MS (past it the output ends with finish_reason "length").';

const REFUSED: Errors = {
  400: "the model cannot generate (not a decoder carrying its tokenizer); the prompt is empty, longer than FEDGE_MAX_PROMPT_TOKENS or than the model's context; max_tokens above FEDGE_MAX_NEW_TOKENS; a parameter out of range; the model failed on this input",
  429: 'FEDGE_MAX_GENERATIONS generations are already running in this isolate (Retry-After)',
};

const missing = (versioned: boolean): Errors => ({
  404: `unknown model, or ${versioned ? 'no such version or alias' : "it has no 'latest' alias"}`,
});

function generateRoutes(versioned: boolean) {
  const base = versioned ? '/v2/models/{name}/versions/{version}' : '/v2/models/{name}';
  const body = {
    type: 'json' as const,
    schema: G.generateRequest,
    limit: { what: 'generation request', bytes: MAX_GENERATE_BODY_BYTES },
  };
  const generate = {
    method: 'post' as const,
    path: `${base}/generate`,
    tag: TAG as typeof TAG,
    summary: versioned ? 'Generate text with a version (or alias)' : "Generate text with a model's latest version",
    description: `OIP generate extension. \`temperature: 0\` (the default unless the model's generation_config.json says do_sample) is greedy and deterministic; a \`seed\` makes sampling reproducible. ${LIMITS}`,
    body,
    responses: { 200: { description: 'the generated text', json: G.generateResponse } },
    errors: { ...REFUSED, ...missing(versioned) },
  } satisfies Route;
  const stream = {
    method: 'post' as const,
    path: `${base}/generate_stream`,
    tag: TAG as typeof TAG,
    summary: versioned
      ? 'Stream generated text from a version (or alias)'
      : "Stream generated text from a model's latest version",
    description: `The same request as generate; the answer is server-sent events, one per chunk of new text, the last with \`done: true\` and details. A client that disconnects stops the generation. ${LIMITS}`,
    body,
    responses: { 200: { description: 'the text as it is generated', events: 'GenerateStreamEvent JSON per event' } },
    errors: { ...REFUSED, ...missing(versioned) },
  } satisfies Route;
  return { generate, stream };
}

const latest = generateRoutes(false);
const version = generateRoutes(true);

export const generationRoutes = defineRoutes({
  generateLatest: latest.generate,
  generateVersion: version.generate,
  generateStreamLatest: latest.stream,
  generateStreamVersion: version.stream,
  openaiCompletions: {
    method: 'post',
    path: '/openai/v1/completions',
    tag: TAG as typeof TAG,
    summary: 'OpenAI-compatible completions',
    description: `The OpenAI completions API for Fedge's language models: \`model\` is a served model (its latest) or model:version. With \`stream: true\`: server-sent events, one Completion chunk per piece of text, then \`data: [DONE]\`. Defaults as OpenAI's (max_tokens 16, temperature 1). ${LIMITS}`,
    body: {
      type: 'json',
      schema: G.completionRequest,
      limit: { what: 'completion request', bytes: MAX_GENERATE_BODY_BYTES },
    },
    responses: {
      200: {
        description: 'the completion (or its chunks)',
        json: G.completion,
        events: 'Completion JSON per chunk, then [DONE]',
      },
    },
    errors: {
      ...REFUSED,
      404: 'no such model, version or alias',
    },
  },
  openaiModels: {
    method: 'get',
    path: '/openai/v1/models',
    tag: TAG as typeof TAG,
    summary: 'OpenAI-compatible list of the models that can generate',
    responses: { 200: { description: 'the language models', json: G.openaiModelList } },
  },
});
