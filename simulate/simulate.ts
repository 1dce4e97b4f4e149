/**
 * npm run simulate — the federated loop end to end: N simulated devices (Participants in this Node process) on the
 * non-IID MNIST split (McMahan et al. 2017: two digit classes per device) against the local edge server, with
 * SecAgg+ and a share of devices dropping out every round. Prints a progress bar per round, the served model's
 * held-out accuracy (2,000 digits, through the OIP endpoint) and ε per round (or that there is no DP); writes
 * simulate/results/<task>.json. The options, their checks and `--help` / `--check` are in options.ts.
 *
 *   npm run simulate -- [--url http://127.0.0.1:8787] [--devices 100] [--per-round 20] [--rounds 20]
 *                       [--dropout 0.3] [--dp] [--epsilon 3] [--sigma 2.5] [--init served|random] [--stage-seconds 5]
 *                       [--scenario finetune [--split dirichlet|pathological] [--alpha 0.5] [--distributed-dp]]
 *   npm run simulate -- --scenario lm [--rank 4] [--windows 16] [--eval-windows 8] [--dp --epsilon 3]   (lm-scenario.ts)
 *   npm run simulate -- --base mnist-cnn[@1] [--trainable head|head:N]   (the head of a served model)
 *   npm run simulate -- --devices 1000 --per-round 1000 --shard-size 100 --rounds 2   (sharded rounds: at-scale.ts)
 * --init served (default): the task starts from the fp32 weights of the bundled mnist-mlp the edge serves — the
 * realistic case of devices fine-tuning a deployed model; --init random: from freshly initialised weights.
 * --base MODEL[@VERSION]: a task on a served model's head (`base` + `trainable`, as POST /v1/tasks takes it): each
 * device embeds its digits with the model's frozen body (client-sdk/federated/base-body.ts) and trains the head; the
 * model must take MNIST digits (one FP32 input of 784 values per example, 10 classes) — others are refused.
 * --scenario finetune (finetune-scenario.ts): the served model is pretrained on 2,000 public digits no device holds,
 * 100 devices hold the other 6,000 (Dirichlet α = 0.5 over labels), and the run also trains its baselines — central,
 * central DP at the same ε, local-only — evaluated exactly as the rounds are; --distributed-dp adds client-level
 * DDGauss noise (the accountant's client ε is printed).
 * Without --url it starts its own local server (the one `npm start` runs) on a free port, reports the peak resident
 * memory of its processes at the end, and stops it.
 */
import type { Baselines } from './finetune-scenario.ts';
import type { NamedWeight } from '../federated/model/model-spec.ts';
import type { LabelledSet } from '../models/data/mnist.ts';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalServer } from '../dev/harness/local-server.ts';
import type { ServedIo } from './simulation.ts';
import { SimulateUsageError, USAGE, describeRun, parseSimulateArgs, privacyLine, recipeLine } from './options.ts';

/** A device alone: the federated run's local recipe, for as many epochs as it would be worth training ~60 examples. */
const LOCAL_EPOCHS = 10;

/** A command line it cannot run: one line and a hint on stderr, exit code 2 — no stack trace. */
function usageError(message: string): never {
  console.error(`npm run simulate: ${message}\n(npm run simulate -- --help lists the options)`);
  process.exit(2);
}

let parsed: ReturnType<typeof parseSimulateArgs>;
try {
  parsed = parseSimulateArgs(process.argv.slice(2));
  if (parsed && parsed.scenario !== 'scale')
    (await import('./simulation.ts')).checkSimulation({ devicesPerRound: parsed.perRound, dropout: parsed.dropout });
} catch (e) {
  if (e instanceof SimulateUsageError || e instanceof RangeError) usageError(e.message);
  throw e;
}
if (parsed === null) {
  console.log(USAGE);
  process.exit(0);
}
const o = parsed;
if (o.check) {
  console.log(`npm run simulate: the options are valid; this command would run\n${describeRun(o)}`);
  process.exit(0);
}
if (o.scenario === 'scale') {
  // Sharded rounds at scale (at-scale.ts): devices over worker threads, shards and server memory per round.
  const { defaultThreads, runAtScale } = await import('./at-scale.ts');
  await runAtScale({
    devices: o.devices,
    perRound: o.perRound,
    shardSize: o.shardSize!,
    rounds: o.rounds,
    dropout: o.dropout,
    stageSeconds: o.stageSeconds,
    threads: o.threads ?? defaultThreads(),
    url: o.url,
  });
  process.exit(0);
}

/** Values per MNIST digit: what a base model's one input must take per example for the simulation to feed it. */
const DIGIT = 28 * 28;

interface ModelMetadata {
  name: string;
  inputs: { name: string; datatype: string; shape: number[]; featurizer?: unknown }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
  parameters: { version: string };
}

/**
 * The served model `--base` names, checked to take MNIST digits: one FP32 input of 784 values per example (any
 * layout of one 28 × 28 channel: [-1,784], [-1,28,28], [-1,1,28,28], [-1,28,28,1] — the digits' row-major pixels fit
 * each) and an FP32 output of 10 classes. Anything else is refused with what it takes, before a task is created.
 */
async function resolveBase(url: string, base: NonNullable<typeof o.base>): Promise<{ version: string; io: ServedIo }> {
  const name = `${base.model}${base.version ? `@${base.version}` : ''}`;
  const res = await fetch(
    `${url}/v2/models/${encodeURIComponent(base.model)}${base.version ? `/versions/${encodeURIComponent(base.version)}` : ''}`,
  );
  if (res.status === 404) {
    const served = (
      ((await (await fetch(`${url}/v2/models`)).json()) as { models: { name: string }[] }).models ?? []
    ).map((m) => m.name);
    throw new SimulateUsageError(
      `--base ${name}: ${url} serves no such model${base.version ? ' version' : ''} (it serves ${served.join(', ') || 'none'}); upload it first, or pass --url of an edge that serves it`,
    );
  }
  if (!res.ok) throw new Error(`${res.url}: ${res.status} ${await res.text()}`);
  const meta = (await res.json()) as ModelMetadata;
  const fits =
    'the simulation has data for MNIST digits only: it trains the head of a model with one FP32 input of 784 values per example ([-1,784], [-1,28,28], [-1,1,28,28] or [-1,28,28,1]; -1: any batch size) and an FP32 output of 10 classes, such as the bundled mnist-mlp and mnist-cnn';
  const show = (t: { name: string; datatype: string; shape: number[] }) =>
    `'${t.name}' ${t.datatype} [${t.shape.join(',')}]`;
  if (meta.inputs.length !== 1)
    throw new SimulateUsageError(
      `--base ${name} takes ${meta.inputs.length} inputs (${meta.inputs.map(show).join(', ')}); ${fits}`,
    );
  const input = meta.inputs[0]!;
  const exampleShape = input.shape.slice(1);
  const perExample = exampleShape.reduce((n, d) => n * d, 1);
  if (
    input.datatype !== 'FP32' ||
    input.featurizer !== undefined ||
    exampleShape.some((d) => d <= 0) ||
    perExample !== DIGIT ||
    input.shape[0] !== -1
  ) {
    throw new SimulateUsageError(
      `--base ${name} takes ${show(input)}${input.featurizer !== undefined ? ' (text, through a featurizer)' : ''}; ${fits}`,
    );
  }
  const output = meta.outputs.find((t) => t.datatype === 'FP32' && (t.shape.at(-1) === 10 || t.shape.at(-1) === -1));
  if (!output)
    throw new SimulateUsageError(
      `--base ${name} answers ${meta.outputs.map(show).join(', ')}: no FP32 output of 10 classes; ${fits}`,
    );
  return { version: meta.parameters.version, io: { input: input.name, exampleShape, output: output.name } };
}

let server: LocalServer | undefined, state: string | undefined;
let url = o.url;
try {
  if (!url) {
    state = mkdtempSync(join(tmpdir(), 'fedge-simulate-'));
    process.stdout.write('starting the local edge server… ');
    // All simulated devices share one address: the edge's per-IP limit (meant for real clients) would treat them as
    // one client, so it is off here; the task's per-device limits stay on.
    const { startLocalServer } = await import('../dev/harness/local-server.ts');
    server = await startLocalServer({ persistTo: state, vars: { FEDGE_RATE_LIMIT: 'off' } });
    url = server.url;
    console.log(`ready at ${url} (${(server.readyAfterMs / 1000).toFixed(1)} s)`);
  }
  await (o.scenario === 'lm' ? runLm(url) : run(url));
} catch (e) {
  // A refused command line (a --base that does not fit) or an edge that cannot be reached: one line, no stack trace.
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (e instanceof SimulateUsageError) console.error(`npm run simulate: ${e.message}`);
  else if (e instanceof TypeError && e.message === 'fetch failed' && url)
    console.error(`npm run simulate: cannot reach the edge at ${url}: ${cause?.code ?? cause?.message ?? e.message}`);
  else throw e;
  process.exitCode = e instanceof SimulateUsageError ? 2 : 1;
} finally {
  await server?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
}

/** --scenario lm (lm-scenario.ts): fedge-gpt's LoRA fine-tuned by SpamAssassin senders, with its baselines. */
async function runLm(url: string): Promise<void> {
  const { runLmScenario } = await import('./lm-scenario.ts');
  const { rounds, perRound, devices, dropout } = o;
  await runLmScenario({
    url,
    adminToken: process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token',
    task: o.task ?? `fedge-gpt-lm-${Date.now().toString(36)}`,
    users: devices,
    perRound,
    rounds,
    dropout,
    stageSeconds: o.stageSeconds,
    rank: o.lm!.rank,
    trainWindows: o.lm!.windows,
    evalWindows: o.lm!.evalWindows,
    recipe: o.recipe.training,
    // A user alone trains as many epochs as the rounds would have asked of them on average.
    localEpochs: Math.max(1, Math.round((rounds * perRound * (1 - dropout) * o.recipe.training.epochs) / devices)),
    privacy: o.privacy,
    epsilon: o.epsilon,
    serverPid: server?.child.pid,
  });
}

async function run(url: string): Promise<void> {
  const { devices, perRound, rounds, dropout, stageSeconds, privacy, distributedDp, recipe } = o;
  const base = o.base ? { ...o.base, ...(await resolveBase(url, o.base)) } : undefined;
  // Loaded once the base is known to fit: a refusal comes before TensorFlow.js, the data and the devices.
  const tf = await import('@tensorflow/tfjs');
  const { useNodeWasm } = await import('../client-sdk/training/node-backend.ts');
  const { buildTfjsModel, readTfjsWeights } = await import('../federated/model/tfjs-model.ts');
  const { importOnnxWeights } = await import('../federated/model/onnx-import.ts');
  const { loadMnist } = await import('../models/data/mnist.ts');
  const { nonIidShards } = await import('../models/data/non-iid.ts');
  const { progressBar } = await import('../models/progress.ts');
  const { mnistMlp } = await import('../models/specs.ts');
  const { peakRssOfGroup } = await import('../dev/harness/process-memory.ts');
  const { lineChartSvg } = await import('../dev/harness/line-chart.ts');
  const { runSimulation, servedAccuracy } = await import('./simulation.ts');
  const { RECIPES, baselines, finetuneData, trainCentrally } = await import('./finetune-scenario.ts');
  const { writePng } = await import('./svg-to-png.ts');
  const { EdgeClient } = await import('../client-sdk/edge/edge-client.ts');
  const { exportOnnx } = await import('../federated/model/onnx-export.ts');
  const { quantizeModel } = await import('../federated/model/quantize.ts');
  useNodeWasm();
  await tf.setBackend('wasm');
  const task =
    o.task ?? (base ? `${base.model}-head-${Date.now().toString(36)}` : `${o.data}-fl-${Date.now().toString(36)}`);
  const { train, test } = loadMnist();
  const finetune =
    o.scenario === 'finetune' ? finetuneData({ dataset: o.data, devices, split: o.split, alpha: o.alpha }) : undefined;
  const spec = finetune?.spec ?? mnistMlp;
  const glorot = () => {
    const model = buildTfjsModel(spec, 7);
    const w = readTfjsWeights(spec, model);
    model.dispose();
    return w;
  };
  let weights: NamedWeight[] | undefined;
  if (finetune) {
    // Public pretraining: the model the edge serves before any device takes part.
    process.stdout.write(`pretraining ${spec.name} on the ${finetune.public.n} public examples… `);
    weights = (await trainCentrally(spec, glorot(), finetune.public, RECIPES[finetune.dataset].pretrain)).weights;
    console.log('done');
  } else if (!base) {
    weights =
      o.init === 'served'
        ? importOnnxWeights(mnistMlp, readFileSync(join(import.meta.dirname, '../models/mnist-mlp/model.fp32.onnx')))
        : glorot();
  }
  const deviceData: LabelledSet[] = finetune?.devices ?? nonIidShards(train, devices);
  const test_ = finetune?.test ?? test;
  const split = finetune?.split ?? 'non-IID, 2 digits each';
  const from = base
    ? `the ${base.trainable} of the served ${base.model}@${base.version} (its body frozen on each device)`
    : finetune
      ? `the ${spec.name} pretrained on ${finetune.public.n} public examples`
      : o.init === 'served'
        ? 'the served mnist-mlp'
        : 'random weights';
  console.log(
    `task ${task}: ${devices} devices (${split}), ${perRound} per round, ${rounds} rounds, ${dropout * 100}% dropping out, SecAgg+ on, from ${from}, ${privacyLine(o)}`,
  );
  console.log(recipeLine(recipe));
  let before = NaN;
  if (finetune) {
    // The base is served like any model, and measured through the same OIP endpoint the rounds are.
    const admin = new EdgeClient({ url, adminToken: process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token' });
    await admin.uploadModel(`${task}-base`, '1', quantizeModel(exportOnnx(spec, weights!)).bytes);
    before = await servedAccuracy(url, `${task}-base`, '1', test_);
    console.log(
      `before: the pretrained model, served int8, scores ${(before * 100).toFixed(2)}% on the ${test_.n} held-out examples`,
    );
  } else if (base) {
    before = await servedAccuracy(url, base.model, base.version, test, base.io);
    console.log(
      `before: the served ${base.model}@${base.version} scores ${(before * 100).toFixed(2)}% on the 2,000 held-out digits`,
    );
  } else if (o.init === 'served') {
    before = await servedAccuracy(url, 'mnist-mlp', undefined, test);
    console.log(`before: the served int8 mnist-mlp scores ${(before * 100).toFixed(2)}% on the 2,000 held-out digits`);
  }
  const started = performance.now();
  const rows: {
    round: number;
    status: string;
    accuracy: number;
    epsilon?: number;
    dropouts: number;
    seconds: number;
  }[] = [];
  let bar = progressBar('round  1', perRound);
  const result = await runSimulation({
    url,
    adminToken: process.env.FEDGE_ADMIN_TOKEN ?? 'dev-admin-token',
    task,
    ...(base
      ? { base: { model: base.model, version: base.version, trainable: base.trainable }, io: base.io }
      : { spec, weights }),
    devices: deviceData,
    test: test_,
    rounds,
    devicesPerRound: perRound,
    dropout,
    stageSeconds,
    ...recipe,
    privacy,
    distributedDp,
    update: { clip: 1, maxExamples: 80 },
    onDevice: (round, done, total) => bar.update(done, `${done}/${total} devices`),
    onRound: ({ round, record, accuracy, seconds }) => {
      bar.done(
        `${record.status} ${record.version ?? ''}${record.status === 'abandoned' ? ` — ${record.reason}` : ''}  accuracy ${(accuracy * 100).toFixed(2)}%  ${privacy ? `ε ${(record.epsilon ?? 0).toFixed(2)}` : distributedDp ? 'no example-level DP' : 'no DP'}  dropouts ${record.dropouts}  ‖Δ‖ ${record.updateNorm?.toFixed(3) ?? '-'}  ${seconds.toFixed(1)} s`,
      );
      rows.push({ ...record, accuracy, seconds });
      if (round < rounds) bar = progressBar(`round ${String(round + 1).padStart(2)}`, perRound);
    },
  });
  const final = result.accuracy.at(-1)!;
  const minutes = (performance.now() - started) / 60000;
  const published = rows.filter((r) => r.status === 'published').length;
  console.log(
    `\n${published} of ${rounds} rounds published${
      published < rounds
        ? ` (${rows
            .filter((r) => r.status !== 'published')
            .map((r) => `round ${r.round}: ${r.status}`)
            .join(', ')})`
        : ''
    }`,
  );
  console.log(
    `served ${base ? '' : 'int8 '}model ${task}@${result.status.publishedVersions.at(-1)}: ${(final * 100).toFixed(2)}% on ${test_.n} held-out examples (OIP)${Number.isFinite(before) ? `, ${(before * 100).toFixed(2)}% before` : ''}; ${minutes.toFixed(1)} min for ${rounds} rounds; ${privacy ? `max device ε ${(result.status.privacy?.maxSpent ?? 0).toFixed(2)}` : distributedDp ? 'no example-level DP' : 'no DP'}`,
  );
  if (result.status.base)
    console.log(
      `trained: ${result.status.base.trainable} of ${result.status.base.model}@${result.status.base.version} (${result.status.base.layers.join(', ')}); the rest of each published version is the base's, byte for byte`,
    );
  const clientEpsilon = result.status.distributedDp?.epsilon;
  if (clientEpsilon !== undefined)
    console.log(`client-level ε (DDGauss, the accountant's, δ ${distributedDp!.delta}): ${clientEpsilon.toFixed(2)}`);
  let measured: Baselines | undefined;
  if (finetune) {
    console.log('\nbaselines, same data, same start, same evaluation (int8, onnxruntime-web):');
    const b = progressBar('baselines', devices + 2);
    let steps = 0;
    measured = await baselines({
      spec,
      base: weights!,
      data: finetune,
      central: RECIPES[finetune.dataset].central,
      centralDp: { ...RECIPES[finetune.dataset].centralDp, epsilon: o.epsilon },
      local: { ...recipe.training, epochs: LOCAL_EPOCHS },
      localPrivacy: privacy,
      onProgress: (what) => b.update(++steps, what),
    });
    b.done(`done`);
    const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
    console.log(
      `  base (public pretraining only) ${pct(measured.base)}   central on the pooled device data ${pct(measured.central)}   central DP-SGD ε ${measured.centralDp.epsilon.toFixed(2)} ${pct(measured.centralDp.accuracy)}   local-only (mean of ${devices} devices${privacy ? ', same per-device DP' : ''}) ${pct(measured.localOnly.mean)}`,
    );
    console.log(
      `\naccuracy before ${pct(before)} → after ${pct(final)} (central ${pct(measured.central)}, central DP ${pct(measured.centralDp.accuracy)}, local-only ${pct(measured.localOnly.mean)})`,
    );
  }
  const memory = server ? peakRssOfGroup(server.child.pid!) : [];
  if (memory.length)
    console.log(`server peak RSS: ${memory.map((m) => `${m.command} ${m.peakRssMiB.toFixed(0)} MiB`).join(', ')}`);
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${task}.json`),
    JSON.stringify(
      {
        task,
        scenario: o.scenario,
        base,
        split,
        devices,
        perRound,
        rounds,
        dropout,
        init: o.init,
        recipe,
        privacy,
        distributedDp,
        clientEpsilon,
        minutes,
        before,
        baselines: measured,
        memory,
        rounds_: rows,
        status: result.status,
      },
      null,
      2,
    ),
  );
  // The baselines as flat lines across the rounds, so the curve is read against them.
  const flat = (label: string, color: string, y: number) => ({
    label,
    color,
    dashed: true,
    points: [
      { x: 0, y: 100 * y },
      { x: rounds, y: 100 * y },
    ],
  });
  const svg = lineChartSvg({
    title: `${task}: served${base ? '' : ' int8'} accuracy per round (${devices} devices, ${perRound}/round, ${dropout * 100}% dropout${privacy ? `, DP ε≤${privacy.epsilon}` : ''}${clientEpsilon !== undefined ? `, client ε ${clientEpsilon.toFixed(1)}` : ''})`,
    xLabel: Number.isFinite(before) ? 'round (0: the served model before)' : 'round',
    yLabel: 'held-out accuracy (%)',
    series: [
      {
        label: `federated (served${base ? '' : ' int8'} model)`,
        color: '#1f77b4',
        points: [
          ...(Number.isFinite(before) ? [{ x: 0, y: 100 * before }] : []),
          ...rows.map((r) => ({ x: r.round, y: 100 * r.accuracy })),
        ],
      },
      ...(measured
        ? [
            flat('central (pooled device data)', '#2ca02c', measured.central),
            flat(`central DP-SGD (ε ${measured.centralDp.epsilon.toFixed(1)})`, '#ff7f0e', measured.centralDp.accuracy),
            flat('local-only (mean)', '#d62728', measured.localOnly.mean),
            flat('base (public pretraining)', '#7f7f7f', measured.base),
          ]
        : []),
    ],
  });
  writeFileSync(join(dir, `${task}.svg`), svg);
  const png = await writePng(svg, join(dir, `${task}.png`));
  console.log(`results: simulate/results/${task}.json, chart: simulate/results/${task}.svg${png ? ` and .png` : ''}`);
}
