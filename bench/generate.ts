/**
 * npm run bench:generate — text generation with fedge-gpt (models/fedge-gpt/model.int8.onnx, read at run time), side
 * by side in one run: one 32-token prompt, greedy, the same number of new tokens for every contestant. So that the
 * model's end of sequence never ends one run early, every contestant runs a copy of the file whose
 * generation_config.json has no eos_token_id (withMetadataProps: the graph is not touched); transformers.js, which reads
 * its own config.json, gets min_new_tokens = max_new_tokens instead. Every run's token count is checked and reported.
 *   edge        the deployable bundle on workerd (dev/harness/bundle-server.ts, what bench:inference calls what a
 *               deployment runs), the copy uploaded as `fedge-gpt-bench`; POST …/generate_stream read as SSE by a
 *               client on the same machine, at 1 and 8 concurrent streams (BENCH_STREAMS)
 *   ort-web     the shared core (generateText) on onnxruntime-web in Node — the WASM build the edge runs, with the
 *               edge's session options, one thread: the edge against it is the platform's cost
 *   ort-node    the shared core on onnxruntime-node, one thread, with qdq_matmulnbits_accuracy_level 1 (its default
 *               rewrite of the int8 QDQ MatMuls into MatMulNBits would quantize the activations too)
 *   Chromium    LocalModel.generateStream on WASM and on WebGPU (SwiftShader here: no GPU) against transformers.js's
 *               text-generation pipeline on the same file and backend (bench/generate-page.ts)
 * Diagnostic variants, each one change away from a contestant, to show where its time goes: ort-web with LocalModel's
 * session options, ort-node with the edge's; the edge's POST /generate (no SSE); in Chromium, LocalModel's loop (the
 * shared core) with the edge's session options and/or without the turn of the event loop it takes between tokens.
 * Per contestant: time to first token (TTFT: from the call or request to the first piece of text), decode tokens/s
 * (tokens after the first piece / time after it), the gaps between tokens (p50/p95 over all runs and streams) and,
 * on the edge, the aggregate tokens/s of all streams. Writes bench/results/generate.json and generate.svg / .png.
 */
import './cli.ts'; // first: --help, --check and bad options are answered before anything loads
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type LocalServer, startBundleServer } from '../dev/harness/local-server.ts';
import { readMetadataProps, withMetadataProps } from '../federated/model/onnx-metadata.ts';
import { sha256Hex } from '../federated/model/digest.ts';
import { loadTokenizer } from '../federated/text/tokenizer.ts';
import { readLanguageModel } from '../federated/generation/language-model.ts';
import { ortDecoderStep, ortSignatures } from '../federated/generation/ort-step.ts';
import type { DecoderStep } from '../federated/generation/decode-loop.ts';
import { generateText, prepareGeneration } from '../federated/generation/generate.ts';
import type { PageRun, PageTrace } from './generate-trace.ts';

const root = join(import.meta.dirname, '..');
const MODEL_FILE = join(root, 'models/fedge-gpt/model.int8.onnx');
const BENCH_MODEL = 'fedge-gpt-bench';
const NEW_TOKENS = Number(process.env.BENCH_TOKENS ?? 64);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const STREAMS = (process.env.BENCH_STREAMS ?? '1,8').split(',').map((s) => Number(s.trim()));
const PARTS = new Set((process.env.BENCH_GENERATE ?? 'node,edge,browser').split(',').map((s) => s.trim()));
const PROMPT_TOKENS = 32;
/** Timed runs per contestant on WebGPU (at most BENCH_RUNS). */
const WEBGPU_RUNS = 2;
/** The prompt is the prefix of this passage (whole words) that is PROMPT_TOKENS tokens long with the file's tokenizer. */
const PASSAGE =
  'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world. It is a way I have of driving off the spleen and regulating the circulation.';
const ADMIN = { Authorization: 'Bearer dev-admin-token' }; // the local default in .dev.vars
const RESULTS = join(root, 'bench/results');
const LIMITS = { maxPromptTokens: 8192, maxNewTokens: 4096, timeoutMs: 10 * 60_000 };

// ---------------------------------------------------------------------------------------------------------------
// Traces and their figures

/** A piece of text as it arrived (ms since the request or call) and how many tokens it carries. */
interface Piece {
  t: number;
  text: string;
  tokens: number;
}
interface Trace {
  pieces: Piece[];
  completionTokens: number;
  text: string;
  /** ms from the request or call to the end of the generation. */
  ms: number;
  /** Whether each piece's token count is known exactly (else one token a piece is assumed). */
  exactTokens: boolean;
}

interface Summary {
  label: string;
  /** What ran it, in words. */
  runtime: string;
  streams: number;
  runs: number;
  /** Each timed run's completion tokens. */
  tokenCounts: number[];
  ttft: { p50: number; p95: number };
  /** Gaps between consecutive tokens, ms (a piece of k tokens counts k gaps of a k-th of its gap). */
  gap: { p50: number; p95: number };
  /** Median over runs (streams) of (tokens after the first piece) / (time after it). */
  decodeTps: number;
  /** All tokens of a round of streams / its wall time, median over rounds (edge only). */
  aggregateTps?: number;
  /** The first generation (warm-up): its TTFT, ms. */
  firstTtft?: number;
  loadMs?: number;
  text: string;
  sameTextAsReference?: boolean;
  note?: string;
  /** Not a contestant: a variant that shows where a contestant's time goes. */
  diagnostic?: boolean;
}

function percentile(values: number[], q: number): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
const median = (values: number[]) => percentile(values, 0.5);

function decodeTps(trace: Trace): number {
  const [first] = trace.pieces;
  const last = trace.pieces.at(-1);
  if (!first || !last || last === first) return Number.NaN;
  const tokens = trace.pieces.slice(1).reduce((a, p) => a + p.tokens, 0);
  return (tokens / (last.t - first.t)) * 1000;
}

function gaps(trace: Trace): number[] {
  const out: number[] = [];
  for (let i = 1; i < trace.pieces.length; i++) {
    const p = trace.pieces[i]!;
    const each = (p.t - trace.pieces[i - 1]!.t) / Math.max(1, p.tokens);
    for (let k = 0; k < Math.max(1, p.tokens); k++) out.push(each);
  }
  return out;
}

function summarize(
  label: string,
  runtime: string,
  streams: number,
  traces: Trace[],
  extra: Partial<Summary> = {},
): Summary {
  return {
    label,
    runtime,
    streams,
    runs: traces.length,
    tokenCounts: traces.map((t) => t.completionTokens),
    ttft: {
      p50: percentile(
        traces.map((t) => t.pieces[0]?.t ?? Number.NaN),
        0.5,
      ),
      p95: percentile(
        traces.map((t) => t.pieces[0]?.t ?? Number.NaN),
        0.95,
      ),
    },
    gap: { p50: percentile(traces.flatMap(gaps), 0.5), p95: percentile(traces.flatMap(gaps), 0.95) },
    decodeTps: median(traces.map(decodeTps)),
    text: traces[0]?.text ?? '',
    ...extra,
  };
}

/**
 * Token counts for pieces of text that arrived without them (the edge's SSE events, LocalModel's stream): the decode
 * loop's chunking is deterministic, so when the texts are the reference's pieces, its counts are theirs. Otherwise one
 * token a piece, the rest on the last — and the trace says so.
 */
function countTokens(
  arrivals: { t: number; text: string }[],
  completionTokens: number,
  reference: Piece[] | undefined,
): Pick<Trace, 'pieces' | 'exactTokens'> {
  const exact =
    reference !== undefined &&
    reference.length === arrivals.length &&
    reference.every((p, i) => p.text === arrivals[i]!.text) &&
    reference.reduce((a, p) => a + p.tokens, 0) === completionTokens;
  if (exact) return { pieces: arrivals.map((a, i) => ({ ...a, tokens: reference[i]!.tokens })), exactTokens: true };
  const pieces = arrivals.map((a) => ({ ...a, tokens: 1 }));
  if (pieces.length) pieces.at(-1)!.tokens += Math.max(0, completionTokens - pieces.length);
  return { pieces, exactTokens: false };
}

// BENCH_GENERATE=chart: only the chart, redrawn from the last run's results.
if (PARTS.has('chart')) {
  const last = JSON.parse(readFileSync(join(RESULTS, 'generate.json'), 'utf8')) as {
    date: string;
    newTokens: number;
    results: Summary[];
  };
  await writeChart(last.results, last.newTokens, last.date);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------------------
// The model and the prompt

const original = readFileSync(MODEL_FILE);
const props = readMetadataProps(original);
const spec = JSON.parse(props['fedge.spec'] ?? '{}') as Record<string, unknown>;
const genConfig = JSON.parse(props['generation_config.json'] ?? '{}') as Record<string, unknown>;
const { eos_token_id: eosTokenId, ...withoutEos } = genConfig;
/** The benchmark's copy: generation_config.json without eos_token_id, so no run ends before NEW_TOKENS. */
const benchBytes = withMetadataProps(original, { 'generation_config.json': JSON.stringify(withoutEos, null, 2) });
const tokenizerConfig = props['tokenizer_config.json'] ? JSON.parse(props['tokenizer_config.json']) : {};
const tokenizer = loadTokenizer(props['tokenizer.json'] ?? '', tokenizerConfig);

function choosePrompt(): string {
  const words = PASSAGE.split(' ');
  for (let n = 1; n <= words.length; n++) {
    const text = words.slice(0, n).join(' ');
    const count = tokenizer.encode(text, { addSpecialTokens: true }).length;
    if (count === PROMPT_TOKENS) return text;
    if (count > PROMPT_TOKENS) break;
  }
  throw new Error(`no prefix of the passage is exactly ${PROMPT_TOKENS} tokens with this tokenizer: change PASSAGE`);
}
const PROMPT = choosePrompt();
if (NEW_TOKENS + PROMPT_TOKENS > Number(spec.contextLength ?? 256))
  throw new Error(`BENCH_TOKENS ${NEW_TOKENS} + the prompt's ${PROMPT_TOKENS} exceed the model's context`);

const sha256 = await sha256Hex(original);
const loadAtStart = loadavg()[0]!;
console.log(
  `fedge text generation benchmark: ${MODEL_FILE.slice(root.length + 1)} (${(original.byteLength / 2 ** 20).toFixed(2)} MiB, sha256 ${sha256.slice(0, 12)}…, ${spec.layers} layers × ${spec.embedDim}, vocab ${spec.vocabSize}, context ${spec.contextLength})`,
);
console.log(
  `prompt (${PROMPT_TOKENS} tokens): ${JSON.stringify(PROMPT)}\ngreedy, ${NEW_TOKENS} new tokens each, ${RUNS} timed runs per contestant after one warm-up; the model's eos (${JSON.stringify(eosTokenId)}) removed from the copy every contestant runs\nload average at start ${loadAtStart.toFixed(2)} on ${availableParallelism()} cores\n`,
);

const results: Summary[] = [];
let reference: { pieces: Piece[]; ids: number[]; text: string } | undefined;

// ---------------------------------------------------------------------------------------------------------------
// The shared core in Node

type OrtLike = typeof import('onnxruntime-node');

async function nodeCore(
  label: string,
  runtime: string,
  ort: OrtLike,
  options: Record<string, unknown>,
): Promise<{ summary: Summary; pieces: Piece[]; ids: number[] }> {
  const started = performance.now();
  const session = await ort.InferenceSession.create(benchBytes, options as never);
  const loadMs = performance.now() - started;
  const model = readLanguageModel(
    readMetadataProps(benchBytes),
    ortSignatures(session.inputNames, session.inputMetadata),
    ortSignatures(session.outputNames, session.outputMetadata),
  );
  if (model.config.eosTokenIds.length) throw new Error('the bench copy still has an eos_token_id');
  const plain = ortDecoderStep(ort.Tensor as never, (feeds) => session.run(feeds as never));
  const once = async (step: DecoderStep): Promise<Trace> => {
    const pieces: Piece[] = [];
    const t0 = performance.now();
    const run = prepareGeneration(model, PROMPT, { maxTokens: NEW_TOKENS, temperature: 0 }, LIMITS);
    const result = await generateText(model, step, run, {
      onChunk: (c) => {
        if (c.text) pieces.push({ t: performance.now() - t0, text: c.text, tokens: c.tokens });
      },
    });
    return {
      pieces,
      completionTokens: result.completionTokens,
      text: result.text,
      ms: performance.now() - t0,
      exactTokens: true,
    };
  };
  // The warm-up also records the token ids (the argmax the greedy loop takes), outside the timed runs.
  const ids: number[] = [];
  const recording: DecoderStep = async (feeds) => {
    const out = await plain(feeds);
    const { data, dims } = out.logits!;
    const vocab = dims[2]!;
    const from = (dims[1]! - 1) * vocab;
    let best = from;
    for (let j = from + 1; j < from + vocab; j++) if (data[j]! > data[best]!) best = j;
    ids.push(best - from);
    return out;
  };
  const warm = await once(recording);
  ids.length = warm.completionTokens;
  const traces: Trace[] = [];
  for (let i = 0; i < RUNS; i++) traces.push(await once(plain));
  await session.release();
  const summary = summarize(label, runtime, 1, traces, { firstTtft: warm.pieces[0]?.t, loadMs });
  return { summary, pieces: traces[0]!.pieces, ids };
}

function report(s: Summary): void {
  console.log(
    `  ${s.label}: TTFT p50 ${s.ttft.p50.toFixed(1)} ms (p95 ${s.ttft.p95.toFixed(1)}), decode ${s.decodeTps.toFixed(1)} tokens/s, gap p50 ${s.gap.p50.toFixed(2)} ms (p95 ${s.gap.p95.toFixed(2)})${s.aggregateTps !== undefined ? `, aggregate ${s.aggregateTps.toFixed(1)} tokens/s` : ''}; tokens ${[...new Set(s.tokenCounts)].join('/')}${s.sameTextAsReference === false ? '; TEXT DIFFERS from ort-web' : ''}`,
  );
}

if (PARTS.has('node') || PARTS.has('edge') || PARTS.has('browser')) {
  // The ort-web reference runs in every case: its pieces give the edge's and LocalModel's SSE/stream pieces their
  // token counts, and its text is what every other contestant must produce.
  console.log('node: the shared core (generateText) in Node, one thread');
  const web = (await import('onnxruntime-web')) as unknown as OrtLike;
  const wasmEnv = web.env as unknown as { wasm: { numThreads: number; proxy: boolean }; logLevel: string };
  wasmEnv.wasm.numThreads = 1;
  wasmEnv.wasm.proxy = false;
  wasmEnv.logLevel = 'error';
  // The edge's session options (functions/inference/ort-runtime.ts): int8 weights dequantized once at load.
  const edgeOptions = {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    extra: { session: { disable_quant_qdq: '1', disable_prepacking: '1' } },
  };
  process.stdout.write('  ort-web (WASM in Node, the edge’s session options)…\n');
  const ortWeb = await nodeCore(
    'ort-web',
    "onnxruntime-web (WASM) in Node, the edge's session options",
    web,
    edgeOptions,
  );
  reference = { pieces: ortWeb.pieces, ids: ortWeb.ids, text: ortWeb.summary.text };
  results.push(ortWeb.summary);
  report(ortWeb.summary);
  if (PARTS.has('node')) {
    const native = (await import('onnxruntime-node')) as OrtLike;
    process.stdout.write('  ort-node (native, qdq_matmulnbits_accuracy_level 1)…\n');
    const ortNode = await nodeCore(
      'ort-node',
      'onnxruntime-node (native CPU), one thread, qdq_matmulnbits_accuracy_level 1',
      native,
      {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        extra: { session: { qdq_matmulnbits_accuracy_level: '1' } },
      },
    );
    ortNode.summary.sameTextAsReference = ortNode.summary.text === reference.text;
    results.push(ortNode.summary);
    report(ortNode.summary);
    process.stdout.write('  ort-node with the edge’s session options (weights dequantized once at load)…\n');
    const nativeEdge = await nodeCore(
      'ort-node, edge options',
      "onnxruntime-node (native CPU), one thread, the edge's session options (disable_quant_qdq: no MatMulNBits, fp32 weights folded at load)",
      native,
      { ...edgeOptions, executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
    );
    nativeEdge.summary.sameTextAsReference = nativeEdge.summary.text === reference.text;
    nativeEdge.summary.diagnostic = true;
    results.push(nativeEdge.summary);
    report(nativeEdge.summary);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The edge

interface StreamResult {
  trace: Trace;
  finishReason: string;
}

async function edgeStream(url: string): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v2/models/${BENCH_MODEL}/generate_stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text_input: PROMPT, parameters: { max_tokens: NEW_TOKENS, temperature: 0 } }),
  });
  if (res.status !== 200) throw new Error(`generate_stream: HTTP ${res.status} ${await res.text()}`);
  const arrivals: { t: number; text: string }[] = [];
  let details: { finish_reason: string; completion_tokens: number } | undefined;
  let error: string | undefined;
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    const t = performance.now() - t0;
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replaceAll('\r\n', '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      const event = JSON.parse(data) as {
        text_output: string;
        done: boolean;
        details?: typeof details;
        error?: string;
      };
      if (event.text_output) arrivals.push({ t, text: event.text_output });
      if (event.error) error = event.error;
      if (event.done) details = event.details;
    }
  }
  if (error || !details) throw new Error(`generate_stream ended without its details${error ? `: ${error}` : ''}`);
  const text = arrivals.map((a) => a.text).join('');
  return {
    trace: {
      ...countTokens(arrivals, details.completion_tokens, reference?.pieces),
      completionTokens: details.completion_tokens,
      text,
      ms: performance.now() - t0,
    },
    finishReason: details.finish_reason,
  };
}

async function measureEdge(): Promise<void> {
  const state = mkdtempSync(join(tmpdir(), 'fedge-bench-generate-'));
  console.log('\nedge: the deployable bundle on workerd (dev/harness/bundle-server.ts), fresh state…');
  let server: LocalServer | undefined;
  try {
    server = await startBundleServer({
      persistTo: state,
      vars: {
        FEDGE_RATE_LIMIT: 'off',
        // Long enough that no stream ends on the clock (finish 'length' before NEW_TOKENS); enough slots for all.
        FEDGE_GENERATE_TIMEOUT_MS: '600000',
        FEDGE_MAX_GENERATIONS: String(Math.max(8, ...STREAMS)),
      },
    });
    console.log(`  ready after ${(server.readyAfterMs / 1000).toFixed(1)} s; uploading the copy as ${BENCH_MODEL}…`);
    const up = await fetch(`${server.url}/v1/models/${BENCH_MODEL}/versions/1`, {
      method: 'PUT',
      headers: { ...ADMIN, 'content-type': 'application/octet-stream' },
      body: benchBytes,
    });
    if (!up.ok) throw new Error(`uploading ${BENCH_MODEL}: ${up.status} ${await up.text()}`);
    await up.arrayBuffer();
    const first = await edgeStream(server.url);
    console.log(
      `  first generation (loads the session): TTFT ${first.trace.pieces[0]!.t.toFixed(1)} ms, ${first.trace.completionTokens} tokens`,
    );
    for (const streams of STREAMS) {
      process.stdout.write(`  ${streams} concurrent stream(s), ${RUNS} round(s)…\n`);
      const traces: Trace[] = [];
      const aggregate: number[] = [];
      const finishes = new Set<string>();
      for (let round = 0; round < RUNS; round++) {
        const t0 = performance.now();
        const got = await Promise.all(Array.from({ length: streams }, () => edgeStream(server!.url)));
        const wall = performance.now() - t0;
        for (const g of got) {
          traces.push(g.trace);
          finishes.add(g.finishReason);
        }
        aggregate.push((got.reduce((a, g) => a + g.trace.completionTokens, 0) / wall) * 1000);
      }
      const summary = summarize(
        streams === 1 ? 'edge' : `edge @${streams}`,
        `the bundle on workerd, ${streams} concurrent SSE stream(s), client on the same machine`,
        streams,
        traces,
        {
          aggregateTps: median(aggregate),
          ...(streams === STREAMS[0] && { firstTtft: first.trace.pieces[0]!.t }),
          sameTextAsReference: reference ? traces.every((t) => t.text === reference!.text) : undefined,
          note: `finish ${[...finishes].join('/')}; piece token counts ${traces.every((t) => t.exactTokens) ? "exact (the reference's pieces)" : 'assumed one a piece'}`,
        },
      );
      results.push(summary);
      report(summary);
    }
    // Diagnostic: the same generation answered in one JSON body (POST …/generate, no SSE), 1 and NEW_TOKENS tokens:
    // the difference is what the edge's decode loop costs per token without a write to the stream.
    process.stdout.write(
      `  diagnostic: POST /generate (one JSON answer), 1 and ${NEW_TOKENS} tokens, ${RUNS} runs each…\n`,
    );
    const one: number[] = [],
      all: number[] = [],
      counts: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      one.push((await edgeGenerate(server.url, 1)).ms);
      const r = await edgeGenerate(server.url, NEW_TOKENS);
      all.push(r.ms);
      counts.push(r.completionTokens);
    }
    const perToken = (median(all) - median(one)) / (NEW_TOKENS - 1);
    const plain: Summary = {
      label: 'edge, no SSE',
      diagnostic: true,
      runtime:
        'the bundle on workerd, POST /generate (one JSON answer): 1 token, then all; per token = the difference / (tokens − 1)',
      streams: 1,
      runs: RUNS,
      tokenCounts: counts,
      ttft: { p50: median(one), p95: percentile(one, 0.95) },
      gap: { p50: perToken, p95: Number.NaN },
      decodeTps: 1000 / perToken,
      text: '',
      note: `a 1-token request ${median(one).toFixed(1)} ms, a ${NEW_TOKENS}-token one ${median(all).toFixed(1)} ms (medians)`,
    };
    results.push(plain);
    report(plain);
  } finally {
    await server?.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

async function edgeGenerate(url: string, tokens: number): Promise<{ ms: number; completionTokens: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v2/models/${BENCH_MODEL}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text_input: PROMPT, parameters: { max_tokens: tokens, temperature: 0 } }),
  });
  const body = (await res.json()) as { details?: { completion_tokens: number } };
  if (res.status !== 200 || !body.details) throw new Error(`generate: HTTP ${res.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - t0, completionTokens: body.details.completion_tokens };
}

if (PARTS.has('edge')) await measureEdge();

// ---------------------------------------------------------------------------------------------------------------
// The device: Chromium

/** config.json for transformers.js: a GPT-2 as the file's fedge.spec describes it. */
function hfConfig(): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: spec.layers,
    n_head: spec.heads,
    n_embd: spec.embedDim,
    n_inner: spec.mlpDim,
    n_positions: spec.contextLength,
    n_ctx: spec.contextLength,
    vocab_size: spec.vocabSize,
    bos_token_id: spec.bosTokenId,
    eos_token_id: spec.eosTokenId,
    pad_token_id: spec.padTokenId,
    layer_norm_epsilon: spec.layerNormEpsilon,
    activation_function: spec.activation === 'gelu_tanh' ? 'gelu_new' : spec.activation,
    use_cache: true,
  };
}

function hfTokenizerConfig(): Record<string, unknown> {
  const added = (JSON.parse(props['tokenizer.json']!) as { added_tokens?: { id: number; content: string }[] })
    .added_tokens;
  const token = (id: unknown) => added?.find((t) => t.id === id)?.content;
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: token(spec.bosTokenId),
    eos_token: token(spec.eosTokenId),
    pad_token: token(spec.padTokenId),
    model_max_length: spec.contextLength,
    add_bos_token: false,
    add_eos_token: false,
    // Fedge decodes without the clean-up (federated/text/tokenizer.ts); transformers.js's default is to clean up.
    clean_up_tokenization_spaces: false,
    ...tokenizerConfig,
  };
}

async function measureBrowser(): Promise<void> {
  const { servePage } = await import('../dev/harness/page-server.ts');
  const { launchChromium } = await import('../dev/harness/chromium.ts');
  const { ORT_WASM_FILES } = await import('../client-sdk/local/ort-loader.ts');
  // onnxruntime-web exports its binaries by name, not its package.json: the package is the folder above them.
  const ortPackage = (from: string) => {
    const dist = dirname(createRequire(from).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
    const version = (JSON.parse(readFileSync(join(dist, '../package.json'), 'utf8')) as { version: string }).version;
    return { dist, version };
  };
  const ours = ortPackage(import.meta.url);
  // transformers.js brings its own onnxruntime-web (a dev build) and loads its Asyncify binary on every device.
  const tjsRoot = join(root, 'node_modules/@huggingface/transformers');
  const tjsOrt = ortPackage(join(tjsRoot, 'package.json'));
  const tjsOwnVersion = (JSON.parse(readFileSync(join(tjsRoot, 'package.json'), 'utf8')) as { version: string })
    .version;
  const tjsVersion = tjsOrt.version;
  const wasm = (body: Buffer) => ({ type: 'application/wasm', body });
  const json = (o: unknown) => ({ type: 'application/json', body: JSON.stringify(o, null, 2) });
  const folder = `/tjs-models/${BENCH_MODEL}`;
  const files: Record<string, { type: string; body: Buffer | string }> = {
    '/model.onnx': { type: 'application/octet-stream', body: Buffer.from(benchBytes) },
    ...Object.fromEntries(
      Object.values(ORT_WASM_FILES).map((f) => [`/ort/${f}`, wasm(readFileSync(join(ours.dist, f)))]),
    ),
    '/tjs-ort/ort-wasm-simd-threaded.asyncify.wasm': wasm(
      readFileSync(join(tjsOrt.dist, 'ort-wasm-simd-threaded.asyncify.wasm')),
    ),
    '/tjs-ort/ort-wasm-simd-threaded.asyncify.mjs': {
      type: 'text/javascript',
      body: readFileSync(join(tjsOrt.dist, 'ort-wasm-simd-threaded.asyncify.mjs')),
    },
    [`${folder}/config.json`]: json(hfConfig()),
    [`${folder}/tokenizer.json`]: { type: 'application/json', body: props['tokenizer.json']! },
    [`${folder}/tokenizer_config.json`]: json(hfTokenizerConfig()),
    [`${folder}/generation_config.json`]: { type: 'application/json', body: props['generation_config.json'] ?? '{}' },
    // transformers.js names an int8 weight-only file by its dtype: q8 → onnx/model_quantized.onnx.
    [`${folder}/onnx/model_quantized.onnx`]: { type: 'application/octet-stream', body: Buffer.from(benchBytes) },
  };
  console.log(
    `\nbrowser: Chromium (WebGPU = SwiftShader, no GPU here); LocalModel on onnxruntime-web ${ours.version}, transformers.js ${tjsOwnVersion} on its onnxruntime-web ${tjsVersion}`,
  );
  const page = await servePage(join(import.meta.dirname, 'generate-page.ts'), files);
  const browser = await launchChromium({ webgpu: true });
  try {
    const tab = await browser.context.newPage();
    tab.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
    await tab.goto(page.url);
    await tab.waitForFunction(
      () => (globalThis as unknown as { document: { title: string } }).document.title === 'ready',
    );
    type Api = Record<string, (...a: unknown[]) => Promise<({ ok: true } & PageRun) | { ok: false; error: string }>>;
    const call = (fn: string, ...args: unknown[]) =>
      tab.evaluate(
        ([f, a]) => (globalThis as unknown as { fedgeGenerate: Api }).fedgeGenerate[f as string]!(...(a as unknown[])),
        [fn, args] as const,
      );
    const toTrace = (p: PageTrace, fromIds: boolean): Trace => {
      if (fromIds)
        return {
          pieces: p.arrivals.map((a) => ({ t: a.t, text: '', tokens: 1 })),
          completionTokens: p.completionTokens,
          text: p.text,
          ms: p.ms,
          exactTokens: true,
        };
      return {
        ...countTokens(p.arrivals, p.completionTokens, reference?.pieces),
        completionTokens: p.completionTokens,
        text: p.text,
        ms: p.ms,
      };
    };
    for (const backend of ['wasm', 'webgpu'] as const) {
      // SwiftShader's WebGPU takes about a second a token on this machine: fewer runs there.
      const runs = backend === 'webgpu' ? Math.min(RUNS, WEBGPU_RUNS) : RUNS;
      const contestants = [
        {
          label: `LocalModel ${backend}`,
          runtime: `LocalModel.generateStream, onnxruntime-web ${ours.version} ${backend === 'wasm' ? 'plain WASM build' : 'JSPI build, native WebGPU provider'}`,
          run: () => call('localModel', backend, PROMPT, NEW_TOKENS, runs),
          fromIds: false,
          diagnostic: false,
        },
        {
          label: `transformers.js ${backend}`,
          runtime: `transformers.js ${tjsOwnVersion} pipeline('text-generation', device '${backend}', dtype 'q8'), its onnxruntime-web ${tjsVersion} (Asyncify build)`,
          run: () => call('transformersJs', BENCH_MODEL, backend, 'q8', PROMPT, NEW_TOKENS, runs),
          fromIds: true,
          diagnostic: false,
        },
      ];
      for (const c of contestants) {
        process.stdout.write(`  ${c.label}: load, warm-up and ${runs} runs…\n`);
        const r = await c.run();
        if (!r.ok) {
          console.log(`  ${c.label}: FAILED — ${r.error}`);
          results.push({
            label: c.label,
            runtime: c.runtime,
            streams: 1,
            runs: 0,
            tokenCounts: [],
            ttft: { p50: Number.NaN, p95: Number.NaN },
            gap: { p50: Number.NaN, p95: Number.NaN },
            decodeTps: Number.NaN,
            text: '',
            note: `failed: ${r.error}`,
            diagnostic: c.diagnostic,
          });
          continue;
        }
        const traces = r.traces.map((p) => toTrace(p, c.fromIds));
        const summary = summarize(c.label, `${c.runtime} (ran on: ${r.ranOn})`, 1, traces, {
          firstTtft: r.warm.arrivals[0]?.t,
          loadMs: r.loadMs,
          diagnostic: c.diagnostic,
          sameTextAsReference: reference ? traces.every((t) => t.text === reference!.text) : undefined,
        });
        if (c.fromIds) {
          const ids = r.traces[0]!.arrivals.map((a) => a.id!);
          const firstDiff = reference ? ids.findIndex((id, i) => id !== reference!.ids[i]) : -1;
          summary.note = `prompt ${r.traces[0]!.promptTokens} tokens; ${
            firstDiff < 0
              ? 'token ids equal the reference'
              : `token ids differ from the reference from token ${firstDiff + 1} on (${ids.filter((id, i) => id !== reference!.ids[i]).length} of ${ids.length} differ; first: ${ids[firstDiff]} vs ${reference!.ids[firstDiff]})`
          }`;
        } else
          summary.note = `piece token counts ${traces.every((t) => t.exactTokens) ? "exact (the reference's pieces)" : 'assumed one a piece'}`;
        results.push(summary);
        report(summary);
      }
    }
  } finally {
    await browser.close();
    await page.close();
  }
}

if (PARTS.has('browser')) await measureBrowser();

// ---------------------------------------------------------------------------------------------------------------
// The table, the targets, the files

const find = (label: string) => results.find((r) => r.label === label && r.runs > 0);
const fmt = (v: number | undefined, digits = 1) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
console.log(
  `\n| contestant | tokens per run | TTFT p50 / p95 | gap between tokens p50 / p95 | decode tokens/s | aggregate tokens/s | text = ort-web's |`,
);
console.log('|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(
    `| ${r.label} | ${r.runs ? [...new Set(r.tokenCounts)].join(', ') : '—'} | ${fmt(r.ttft.p50)} / ${fmt(r.ttft.p95)} ms | ${fmt(r.gap.p50, 2)} / ${fmt(r.gap.p95, 2)} ms | ${fmt(r.decodeTps)} | ${fmt(r.aggregateTps)} | ${r.label === 'ort-web' ? '(reference)' : r.sameTextAsReference === undefined ? '—' : r.sameTextAsReference ? 'yes' : 'NO'} |`,
  );
for (const r of results) if (r.note) console.log(`  ${r.label}: ${r.note}`);

interface Target {
  what: string;
  value: number | undefined;
  goal: string;
  met: boolean | undefined;
}
const ratio = (a: Summary | undefined, b: Summary | undefined) => (a && b ? a.decodeTps / b.decodeTps : undefined);
const edge = find('edge');
const targets: Target[] = [
  {
    what: "edge decode tokens/s ÷ ort-web-in-Node's (1 stream)",
    value: ratio(edge, find('ort-web')),
    goal: '≥ 0.8',
    met: undefined,
  },
  { what: 'edge TTFT p50 for the 32-token prompt (1 stream), ms', value: edge?.ttft.p50, goal: '≤ 50', met: undefined },
  {
    what: "LocalModel WASM decode tokens/s ÷ transformers.js WASM's",
    value: ratio(find('LocalModel wasm'), find('transformers.js wasm')),
    goal: '≥ 1.0',
    met: undefined,
  },
  {
    what: "LocalModel WebGPU decode tokens/s ÷ transformers.js WebGPU's",
    value: ratio(find('LocalModel webgpu'), find('transformers.js webgpu')),
    goal: '≥ 1.0',
    met: undefined,
  },
];
for (const t of targets) {
  if (t.value === undefined || !Number.isFinite(t.value)) continue;
  const bound = Number(t.goal.slice(2));
  t.met = t.goal.startsWith('≥') ? t.value >= bound : t.value <= bound;
}
console.log('\ntargets:');
for (const t of targets)
  console.log(
    `  ${t.what}: ${fmt(t.value, 2)} (target ${t.goal}) → ${t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met'}`,
  );

const counts = results.filter((r) => r.runs > 0).flatMap((r) => r.tokenCounts);
const allEqual = counts.every((c) => c === NEW_TOKENS);
console.log(
  `\ntoken counts: ${allEqual ? `every timed run of every contestant generated ${NEW_TOKENS} tokens` : `NOT all ${NEW_TOKENS}: ${results.map((r) => `${r.label} ${r.tokenCounts.join(',')}`).join('; ')}`}`,
);
const loadAtEnd = loadavg()[0]!;
console.log(`load average at the end ${loadAtEnd.toFixed(2)}`);

mkdirSync(RESULTS, { recursive: true });
const date = new Date().toISOString();
writeFileSync(
  join(RESULTS, 'generate.json'),
  `${JSON.stringify(
    {
      date,
      host: { cores: availableParallelism(), loadAtStart, loadAtEnd },
      model: { file: MODEL_FILE.slice(root.length + 1), bytes: original.byteLength, sha256, spec },
      prompt: { text: PROMPT, tokens: PROMPT_TOKENS },
      newTokens: NEW_TOKENS,
      runs: RUNS,
      streams: STREAMS,
      referenceText: reference?.text,
      referenceIds: reference?.ids,
      allTokenCountsEqual: allEqual,
      results,
      targets,
    },
    (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  )}\n`,
);
console.log('\nwrote bench/results/generate.json');
await writeChart(results, NEW_TOKENS, date);

/** bench/results/generate.svg, and .png where Chromium is installed. */
async function writeChart(rows: Summary[], newTokens: number, when: string): Promise<void> {
  const svg = chartSvg(
    rows.filter((r) => r.runs > 0),
    newTokens,
    when.slice(0, 10),
  );
  writeFileSync(join(RESULTS, 'generate.svg'), svg);
  const { writePng } = await import('../simulate/svg-to-png.ts');
  const png = await writePng(svg, join(RESULTS, 'generate.png'));
  console.log(`wrote bench/results/generate.svg${png ? ' and generate.png' : ''}`);
}

/**
 * Two bar panels, one row per contestant: decode tokens/s and TTFT p50 (log scales: SwiftShader's WebGPU is orders of
 * magnitude from the CPU rows).
 */
function chartSvg(rows: Summary[], newTokens: number, day: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const W = 900,
    rowH = 26,
    top = 90,
    labelW = 240,
    gap = 40,
    panelW = (W - labelW - gap - 30) / 2;
  const H = top + rows.length * rowH + 50;
  const kinds = [
    { label: 'diagnostic variant', color: '#c5cae9', test: (r: Summary) => r.diagnostic === true },
    { label: 'edge (workerd)', color: '#2471a3', test: (r: Summary) => r.label.startsWith('edge') },
    { label: 'shared core in Node', color: '#7f8c8d', test: (r: Summary) => r.label.startsWith('ort-') },
    { label: 'LocalModel (Chromium)', color: '#27ae60', test: (r: Summary) => r.label.startsWith('LocalModel') },
    { label: 'transformers.js (Chromium)', color: '#e67e22', test: () => true },
  ];
  const color = (r: Summary) => kinds.find((k) => k.test(r))!.color;
  // The legend lists the variants last.
  const legend = [...kinds.slice(1), kinds[0]!].map((k, i) => {
    const x = 20 + i * 176;
    return `<rect x="${x}" y="30" width="10" height="10" fill="${k.color}"/><text x="${x + 14}" y="39">${esc(k.label)}</text>`;
  });
  const panel = (x0: number, title: string, unit: string, value: (r: Summary) => number, better: string) => {
    const values = rows.map(value).filter((v) => Number.isFinite(v) && v > 0);
    const lo = 10 ** Math.floor(Math.log10(Math.min(...values))),
      hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
    const sx = (v: number) => x0 + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * panelW;
    const parts = [
      `<text x="${x0 + panelW / 2}" y="${top - 30}" text-anchor="middle" font-size="13">${esc(title)} (${esc(better)})</text>`,
    ];
    for (let d = lo; d <= hi * 1.0001; d *= 10)
      parts.push(
        `<line x1="${sx(d)}" y1="${top - 8}" x2="${sx(d)}" y2="${top + rows.length * rowH}" stroke="#ddd"/><text x="${sx(d)}" y="${top + rows.length * rowH + 16}" text-anchor="middle">${d >= 1 ? d : d.toPrecision(1)}</text>`,
      );
    parts.push(
      `<text x="${x0 + panelW / 2}" y="${top + rows.length * rowH + 34}" text-anchor="middle">${esc(unit)} (log scale)</text>`,
    );
    rows.forEach((r, i) => {
      const v = value(r);
      if (!Number.isFinite(v) || v <= 0) return;
      const y = top + i * rowH + 4;
      parts.push(
        `<rect x="${x0}" y="${y}" width="${Math.max(1, sx(v) - x0).toFixed(1)}" height="${rowH - 8}" fill="${color(r)}"/>`,
        // The figure after the bar, or inside its end where the panel has no room left.
        sx(v) + 40 > x0 + panelW
          ? `<text x="${(sx(v) - 4).toFixed(1)}" y="${y + rowH / 2}" text-anchor="end" fill="${r.diagnostic ? '#222' : 'white'}">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`
          : `<text x="${(sx(v) + 4).toFixed(1)}" y="${y + rowH / 2}">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`,
      );
    });
    return parts.join('\n');
  };
  const labels = rows.map(
    (r, i) => `<text x="${labelW - 8}" y="${top + i * rowH + rowH / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">fedge-gpt, ${PROMPT_TOKENS}-token prompt, greedy, ${newTokens} new tokens (${day})</text>`,
    ...legend,
    ...labels,
    panel(labelW, 'decode tokens/s, per stream', 'tokens/s', (r) => r.decodeTps, 'higher is better'),
    panel(labelW + panelW + gap, 'time to first token, p50', 'ms', (r) => r.ttft.p50, 'lower is better'),
    '</svg>',
  ].join('\n');
}
