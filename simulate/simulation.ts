/**
 * A federated task run by simulated devices against a running edge: creates the task, enrolls N devices (each an
 * Ed25519 identity and a shard of the non-IID MNIST split), and for every round lets devices join as real
 * Participants — some dropping out at a random stage — then reads the task's status and checks the published int8
 * model's held-out accuracy through the OIP endpoint. Used by `npm run simulate` and the end-to-end tests.
 */
import { Participant, type DropPoint } from '../client-sdk/federated/participant.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../client-sdk/privacy/ledger.ts';
import { createIdentity } from '../federated/secagg/client.ts';
import { f32, toBase64, u8 } from '../federated/bytes.ts';
import { flattenWeights } from '../federated/model/flat-weights.ts';
import type { ModelSpec, NamedWeight } from '../federated/model/model-spec.ts';
import type { RoundRecord, TaskStatus } from '../federated/aggregation/task-protocol.ts';
import { accuracy } from '../federated/model/accuracy.ts';
import type { LabelledSet } from '../models/data/mnist.ts';
import { DEFAULT_SHARD_SIZE } from '../federated/aggregation/task-settings.ts';
import { shardSecAggParameters } from '../federated/secagg/shards.ts';

export interface SimulationOptions {
  url: string;
  adminToken: string;
  task: string;
  /** What trains: a model in Fedge's spec from `weights`, or (`base`) the head of a served model. */
  spec?: ModelSpec | undefined;
  weights?: NamedWeight[] | undefined;
  base?: { model: string; version: string; trainable: string } | undefined;
  /** How the served model takes examples (default: input 'input' [n, features], output 'probabilities'). */
  io?: ServedIo | undefined;
  devices: LabelledSet[];
  test: LabelledSet;
  rounds: number;
  devicesPerRound: number;
  /** Share of a round's devices that vanish (each at a random stage). */
  dropout: number;
  stageSeconds: number;
  training: { epochs: number; batchSize: number; learningRate: number; optimizer: 'sgd' | 'momentum' | 'adam' };
  privacy?: { l2NormClip: number; noiseMultiplier: number; delta: number; epsilon: number } | undefined;
  /** Client-level distributed DP (DDGauss) on top of SecAgg+. */
  distributedDp?: { clip: number; noiseMultiplier: number; delta: number } | undefined;
  serverOptimizer?: { kind: 'fedavg' | 'fedavgm' | 'fedadam'; learningRate?: number; momentum?: number };
  update?: { clip: number; maxExamples: number };
  onRound?: (r: { round: number; record: RoundRecord; accuracy: number; seconds: number }) => void;
  onDevice?: (round: number, done: number, total: number) => void;
}

const ADMIN = (token: string) => ({ Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' });

async function ok(res: Response): Promise<Response> {
  if (!res.ok) throw new Error(`${res.url}: ${res.status} ${await res.text()}`);
  return res;
}

/** Bytes of examples per inference request: well inside the edge's default FEDGE_MAX_INFER_BYTES (8 MiB). */
const REQUEST_BYTES = 4 * 1024 * 1024;

/** A served model's input (its name and one example's shape) and the output that holds class probabilities. */
export interface ServedIo {
  input: string;
  exampleShape: number[];
  output: string;
}

/**
 * Held-out accuracy of `model`'s `version` (default: its `latest` alias) through the OIP endpoint (binary tensor
 * extension), in requests of at most REQUEST_BYTES of examples (1,188 spam vectors of 4,096 floats are 19 MB).
 * `io` says how the model takes examples (default: input 'input' [n, features], output 'probabilities').
 */
export async function servedAccuracy(
  url: string,
  model: string,
  version: string | undefined,
  test: LabelledSet,
  io?: ServedIo,
): Promise<number> {
  const per = Math.max(1, Math.floor(REQUEST_BYTES / (4 * test.features)));
  const probabilities: Float32Array[] = [];
  for (let start = 0; start < test.n; start += per) {
    const n = Math.min(per, test.n - start);
    const x = test.x.subarray(start * test.features, (start + n) * test.features);
    const header = new TextEncoder().encode(
      JSON.stringify({
        inputs: [
          {
            name: io?.input ?? 'input',
            shape: [n, ...(io?.exampleShape ?? [test.features])],
            datatype: 'FP32',
            parameters: { binary_data_size: x.byteLength },
          },
        ],
        outputs: [{ name: io?.output ?? 'probabilities', parameters: { binary_data: true } }],
      }),
    );
    const body = new Uint8Array(header.byteLength + x.byteLength);
    body.set(header);
    body.set(u8(x), header.byteLength);
    const res = await ok(
      await fetch(`${url}/v2/models/${model}${version === undefined ? '' : `/versions/${version}`}/infer`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/octet-stream',
          'Inference-Header-Content-Length': String(header.byteLength),
        },
        body,
      }),
    );
    const bytes = new Uint8Array(await res.arrayBuffer());
    probabilities.push(f32(bytes.slice(Number(res.headers.get('Inference-Header-Content-Length'))), 'probabilities'));
  }
  const all = new Float32Array(probabilities.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of probabilities) all.set(p, offset), (offset += p.length);
  return accuracy(all, test.y);
}

export async function status(url: string, task: string): Promise<TaskStatus> {
  return (await (await ok(await fetch(`${url}/v1/tasks/${task}`))).json()) as TaskStatus;
}

/**
 * Settings whose rounds cannot publish: each round drops round(dropout × devicesPerRound) devices before unmasking,
 * and SecAgg+ needs t of them (the threshold the edge picks for this size and dropout, secagg/shards.ts) plus one to
 * start. Refused before anything is created, with what would work.
 */
export function checkSimulation(o: { devicesPerRound: number; dropout: number }): void {
  if (o.devicesPerRound > DEFAULT_SHARD_SIZE) return; // sharded: each shard has its own threshold
  const { threshold } = shardSecAggParameters({ devicesPerRound: o.devicesPerRound, dropoutRate: o.dropout });
  const survivors = o.devicesPerRound - Math.round(o.dropout * o.devicesPerRound);
  if (survivors >= threshold + 1) return;
  let n = o.devicesPerRound;
  while (
    n < DEFAULT_SHARD_SIZE &&
    n - Math.round(o.dropout * n) < shardSecAggParameters({ devicesPerRound: n, dropoutRate: o.dropout }).threshold + 1
  )
    n++;
  throw new RangeError(
    `every round would be abandoned: ${o.devicesPerRound} devices per round with ${o.dropout * 100} % dropping out leaves ${survivors}, and SecAgg+ for that round needs ${threshold + 1} (threshold ${threshold} + 1); use --per-round ${n} or more, or a lower --dropout`,
  );
}

export async function runSimulation(o: SimulationOptions): Promise<{ status: TaskStatus; accuracy: number[] }> {
  checkSimulation(o);
  if (!o.base && !(o.spec && o.weights)) throw new TypeError('runSimulation: give spec and weights, or base');
  const token = `enroll-${crypto.randomUUID()}`;
  await ok(
    await fetch(`${o.url}/v1/tasks`, {
      method: 'POST',
      headers: ADMIN(o.adminToken),
      body: JSON.stringify({
        task: o.task,
        model: o.task,
        alias: 'federated',
        ...(o.base
          ? { base: { model: o.base.model, version: o.base.version }, trainable: o.base.trainable }
          : { spec: o.spec, weights: toBase64(new Uint8Array(flattenWeights(o.spec!, o.weights!).buffer)) }),
        rounds: o.rounds,
        devicesPerRound: o.devicesPerRound,
        stageSeconds: o.stageSeconds,
        expectedDropout: o.dropout,
        training: o.training,
        privacy: o.privacy,
        distributedDp: o.distributedDp,
        serverOptimizer: o.serverOptimizer ?? { kind: 'fedavg' },
        update: o.update ?? { clip: 1, maxExamples: 200 },
        enrollmentToken: token,
      }),
    }),
  );
  const participants = await Promise.all(
    o.devices.map(async (_, i) => {
      const p = new Participant({
        url: o.url,
        task: o.task,
        identity: await createIdentity(`device-${String(i).padStart(4, '0')}`),
        backend: 'wasm',
        pollMs: 100,
        ledger: o.privacy
          ? new PrivacyLedger(new MemoryLedgerStore(), { epsilon: o.privacy.epsilon, delta: o.privacy.delta })
          : undefined,
      });
      await p.enroll(token);
      return p;
    }),
  );
  const accuracy: number[] = [];
  const stages: DropPoint[] = ['before-share-keys', 'before-masked-input', 'before-unmask'];
  try {
    return await rounds(o, participants, accuracy, stages);
  } finally {
    // A task on a served model's head holds each device's base body (an ORT session).
    await Promise.all(participants.map((p) => p.release()));
  }
}

async function rounds(
  o: SimulationOptions,
  participants: Participant[],
  accuracy: number[],
  stages: DropPoint[],
): Promise<{ status: TaskStatus; accuracy: number[] }> {
  for (let round = 1; round <= o.rounds; round++) {
    const started = performance.now();
    // Pick this round's devices at random; a share of them drop out, each at a random stage.
    const chosen = [...participants.keys()].sort(() => Math.random() - 0.5).slice(0, o.devicesPerRound);
    const drops = Math.round(o.dropout * chosen.length);
    let done = 0;
    const outcomes = await Promise.all(
      chosen.map(async (d, k) => {
        const dropAt = k < drops ? stages[k % stages.length] : undefined;
        const r = await participants[d]!.joinRound(o.devices[d]!, { dropAt }).catch((e: Error) => ({
          status: 'failed',
          reason: e.message,
        }));
        o.onDevice?.(round, ++done, chosen.length);
        return r;
      }),
    );
    const failed = outcomes.filter((r) => r.status === 'failed');
    if (failed.length) throw new Error(`round ${round}: ${failed.length} devices failed: ${failed[0]!.reason}`);
    // Wait until the task has moved past this round (dropped devices make stages wait for their deadline).
    let s = await status(o.url, o.task);
    while (s.history.find((h) => h.round === round)?.status === 'running') {
      await new Promise((r) => setTimeout(r, 200));
      s = await status(o.url, o.task);
    }
    const record = s.history.find((h) => h.round === round)!;
    const acc = record.version ? await servedAccuracy(o.url, o.task, record.version, o.test, o.io) : NaN;
    if (record.version) {
      await ok(
        await fetch(`${o.url}/v1/tasks/${o.task}/evaluations`, {
          method: 'POST',
          headers: ADMIN(o.adminToken),
          body: JSON.stringify({ round, accuracy: acc }),
        }),
      );
    }
    accuracy.push(acc);
    o.onRound?.({ round, record, accuracy: acc, seconds: (performance.now() - started) / 1000 });
  }
  return { status: await status(o.url, o.task), accuracy };
}
