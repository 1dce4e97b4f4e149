/**
 * The round engine (functions/tasks/round/secagg-round.ts) in plain Node, over the same TaskStore the Durable Objects
 * use — on Node's SQLite — with real SecAgg+ devices (federated/secagg/client.ts): what a round's sum is with and
 * without dropouts, after a restart in the middle of the round, and what a resent, changed or forged message gets.
 */
import { describe, expect, it } from 'vitest';
import { type TaskSettings, relayFromJson } from '../../federated/aggregation/task-protocol.ts';
import { u8 } from '../../federated/bytes.ts';
import {
  type ClientState,
  clientAdvertiseKeys,
  clientMaskedInput,
  clientShareKeys,
  clientUnmask,
  createIdentity,
  type DeviceIdentity,
} from '../../federated/secagg/client.ts';
import type { DeviceMessage, RoundConfig } from '../../federated/secagg/messages.ts';
import { sha256, sign } from '../../federated/secagg/primitives.ts';
import { TINY_D, tiny } from '../fixtures/tiny-spec.ts';
import { encodeMessage } from '../../federated/secagg/wire.ts';
import { type RoundStep, SecAggRound } from '../../functions/tasks/round/secagg-round.ts';
import { TaskStore } from '../../functions/tasks/task-store.ts';
import { NodeSqlStorage } from './node-sql-storage.ts';

const settings = {
  task: 'engine',
  model: 'engine',
  alias: 'federated',
  // 4 inputs → 3 classes: 15 parameters, 16 words with the weight.
  spec: tiny,
  rounds: 1,
  devicesPerRound: 4,
  minDevices: 3,
  stageSeconds: 600,
  secagg: { neighbours: 3, threshold: 2 },
  update: { clip: 1, maxExamples: 10 },
  training: { epochs: 1, batchSize: 8, learningRate: 0.1 },
  serverOptimizer: { kind: 'fedavg' },
} as unknown as TaskSettings;
const LENGTH = TINY_D + 1;

/** A Durable Object's storage and a round over it; `restart` gives a fresh engine over the same storage. */
function room() {
  const sql = new NodeSqlStorage();
  const alarms: number[] = [];
  const store = new TaskStore(sql as unknown as SqlStorage);
  const engine = () =>
    new SecAggRound(store, {
      transaction: (fn) => sql.transactionSync(fn),
      setAlarm: async (at) => void alarms.push(at),
    });
  const now = Date.now();
  const round = engine();
  store.setMeta('settings', settings);
  round.open({
    round: 1,
    roundId: 'engine/1/x',
    graphSeed: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    stage: 'advertise-keys',
    opened: now,
    deadline: now + 600_000,
    weightsVersion: 0,
  });
  return { store, round, engine, alarms };
}

/** A device that speaks to the engine directly: its messages, and its relays read from the engine. */
class Device {
  state?: ClientState;
  readonly identity: DeviceIdentity;
  readonly input: Uint32Array;
  constructor(identity: DeviceIdentity, input: Uint32Array) {
    this.identity = identity;
    this.input = input;
  }
  static async enrolled(store: TaskStore, id: string, value: number) {
    const d = new Device(await createIdentity(id), new Uint32Array(LENGTH).fill(value));
    store.addDevice(id, d.identity.publicKey);
    return d;
  }
  async relay(round: SecAggRound, store: TaskStore, kind: 'broadcast' | 'delivery' | 'unmask') {
    const r = await round.relay(settings, store.pointer(), kind, this.identity.id);
    if (!('json' in r)) throw new Error(`no ${kind} relay: ${JSON.stringify(r)}`);
    return r.json as never;
  }
  async advertise(store: TaskStore) {
    const p = store.pointer();
    const config: RoundConfig = {
      roundId: p.roundId,
      neighbours: settings.secagg.neighbours,
      threshold: settings.secagg.threshold,
      graphSeed: new Uint8Array(32),
      length: LENGTH,
      minContributors: settings.minDevices,
    };
    const { state, message } = await clientAdvertiseKeys(config, this.identity);
    this.state = state;
    return message;
  }
  async share(round: SecAggRound, store: TaskStore) {
    const r = await clientShareKeys(this.state!, relayFromJson.broadcast(await this.relay(round, store, 'broadcast')));
    this.state = r.state;
    return r.message;
  }
  async masked(round: SecAggRound, store: TaskStore) {
    const r = await clientMaskedInput(
      this.state!,
      relayFromJson.delivery(await this.relay(round, store, 'delivery')),
      this.input,
    );
    this.state = r.state;
    return r.message;
  }
  async unmask(round: SecAggRound, store: TaskStore) {
    const r = await clientUnmask(this.state!, await this.relay(round, store, 'unmask'));
    this.state = r.state;
    return r.message;
  }
}

/** Sends `m` as the Durable Object would take it: wire bytes, or a masked input's digest and words. */
async function send(round: SecAggRound, store: TaskStore, m: DeviceMessage) {
  const body =
    m.stage === 'masked-input'
      ? { payloadDigest: await sha256(u8(m.masked)), chunks: () => [m.masked] }
      : { bytes: encodeMessage(m) };
  return round.accept(settings, store.pointer(), m, body);
}
const step = (round: SecAggRound, store: TaskStore, force = false): Promise<RoundStep> =>
  round.step(settings, store.pointer(), { force });

async function devices(store: TaskStore, n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => Device.enrolled(store, `dev-${i}`, 1000 * (i + 1))));
}

/** Runs check-in and share-keys with every device; the stages close as soon as everyone answered. */
async function throughShareKeys(round: SecAggRound, store: TaskStore, all: Device[]) {
  for (const d of all)
    expect(await send(round, store, await d.advertise(store))).toEqual({ accepted: true, duplicate: false });
  expect(await step(round, store)).toEqual({ kind: 'waiting' });
  expect(store.pointer().stage).toBe('share-keys');
  for (const d of all) await send(round, store, await d.share(round, store));
  expect(await step(round, store)).toEqual({ kind: 'waiting' });
  expect(store.pointer().stage).toBe('masked-input');
}

const expectSum = (s: RoundStep, values: number[]) => {
  if (s.kind !== 'unmasked') throw new Error(`the round did not unmask: ${JSON.stringify(s)}`);
  expect(s.survivors).toBe(values.length);
  expect([...s.sum]).toEqual(new Array(LENGTH).fill(values.reduce((a, b) => a + b, 0)));
};

describe('the SecAgg+ round engine in Node', () => {
  it('unmasks exactly the sum of the inputs when every device answers, its record counting each stage', async () => {
    const { store, round } = room();
    const all = await devices(store, 4);
    await throughShareKeys(round, store, all);
    for (const d of all) await send(round, store, await d.masked(round, store));
    expect(await step(round, store)).toEqual({ kind: 'waiting' });
    expect(store.pointer().stage).toBe('unmask');
    for (const d of all) await send(round, store, await d.unmask(round, store));
    const done = await step(round, store);
    expectSum(done, [1000, 2000, 3000, 4000]);
    expect(done).toMatchObject({ sharers: 4, submitted: 4, unmasked: 4, badShares: [] });
    expect(store.record(1)).toMatchObject({ advertised: 4, shared: 4, submitted: 4, unmasked: 4 });
  });

  it('recovers a dropped device: its masks are removed and the sum is the survivors', async () => {
    const { store, round } = room();
    const all = await devices(store, 4);
    await throughShareKeys(round, store, all);
    for (const d of all.slice(0, 3)) await send(round, store, await d.masked(round, store));
    // dev-3 never sends its masked input: its deadline closes the stage.
    expect(await step(round, store)).toEqual({ kind: 'waiting' });
    expect(await step(round, store, true)).toEqual({ kind: 'waiting' });
    expect(store.pointer().stage).toBe('unmask');
    for (const d of all.slice(0, 3)) await send(round, store, await d.unmask(round, store));
    expectSum(await step(round, store), [1000, 2000, 3000]);
  });

  it('finishes the round from storage alone after a restart between masked inputs and unmask', async () => {
    const { store, round, engine } = room();
    const all = await devices(store, 4);
    await throughShareKeys(round, store, all);
    for (const d of all) await send(round, store, await d.masked(round, store));
    await step(round, store);
    const requests = await Promise.all(all.map((d) => d.relay(round, store, 'unmask')));
    // A new engine over the same storage: the state is rebuilt from the stored messages, the sum from its blob.
    const restarted = engine();
    expect(await Promise.all(all.map((d) => d.relay(restarted, store, 'unmask')))).toEqual(requests);
    for (const d of all) await send(restarted, store, await d.unmask(restarted, store));
    expectSum(await step(restarted, store), [1000, 2000, 3000, 4000]);
  });

  it('takes a resent message once, refuses a changed one (409) and a forged one (403) without counting them', async () => {
    const { store, round } = room();
    const [a, b] = await devices(store, 2);
    const ad = await a!.advertise(store);
    expect(await send(round, store, ad)).toEqual({ accepted: true, duplicate: false });
    expect(await send(round, store, ad)).toEqual({ accepted: true, duplicate: true });
    const changed = await a!.advertise(store);
    expect(await send(round, store, changed)).toMatchObject({ refused: { status: 409 } });
    // b's message signed with a's key: not b's.
    const forged = { ...(await b!.advertise(store)) };
    forged.signature = await sign(a!.identity.seed, new Uint8Array([1]));
    expect(await send(round, store, forged)).toMatchObject({ refused: { status: 403 } });
    expect(store.record(1)).toMatchObject({ advertised: 1 });
  });

  it('keeps check-in open past its deadline while too few devices checked in', async () => {
    const { store, round, alarms } = room();
    const [a] = await devices(store, 1);
    await send(round, store, await a!.advertise(store));
    expect(await step(round, store, true)).toEqual({ kind: 'waiting' });
    expect(store.pointer().stage).toBe('advertise-keys');
    expect(alarms.at(-1)).toBe(store.pointer().deadline);
  });
});
