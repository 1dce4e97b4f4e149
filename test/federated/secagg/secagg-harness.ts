/** Runs whole SecAgg+ rounds in memory for tests and the benchmark: devices and server exchange messages directly. */
import {
  type ClientState,
  type DeviceIdentity,
  clientAdvertiseKeys,
  clientMaskedInput,
  clientShareKeys,
  clientUnmask,
  createIdentity,
} from '../../../federated/secagg/client.ts';
import { type RoundConfig, SecAggError } from '../../../federated/secagg/messages.ts';
import { randomBytes } from '../../../federated/random.ts';
import {
  type AggregateResult,
  type ServerState,
  serverCloseAdvertise,
  serverCloseMasked,
  serverCloseShares,
  serverCloseUnmask,
  serverInit,
  serverReceive,
} from '../../../federated/secagg/server.ts';

/** Which devices vanish before sending the message of each stage. */
export interface Dropouts {
  beforeAdvertise?: Set<string>;
  beforeShare?: Set<string>;
  beforeMasked?: Set<string>;
  beforeUnmask?: Set<string>;
}

export interface RoundRun {
  result: AggregateResult;
  server: ServerState;
  clients: Map<string, ClientState>;
  /** Devices that refused a stage (a SecAggError on the device), which the server sees as dropouts. */
  refusals: string[];
}

/** A device that refuses a stage simply sends nothing: the server treats it as a dropout. */
async function orRefuse<T>(refusals: string[], id: string, step: () => Promise<T>): Promise<T | undefined> {
  try {
    return await step();
  } catch (e) {
    if (!(e instanceof SecAggError)) throw e;
    refusals.push(`${id}: ${e.message}`);
    return undefined;
  }
}

export async function makeIdentities(n: number): Promise<DeviceIdentity[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => createIdentity(`device-${String(i).padStart(4, '0')}`)));
}

export function roundConfig(
  over: Partial<RoundConfig> & Pick<RoundConfig, 'neighbours' | 'threshold' | 'length'>,
): RoundConfig {
  return { roundId: `round-${Math.random().toString(36).slice(2)}`, graphSeed: randomBytes(32), ...over };
}

export async function runRound(
  config: RoundConfig,
  identities: DeviceIdentity[],
  inputs: Map<string, Uint32Array>,
  drop: Dropouts = {},
): Promise<RoundRun> {
  const server = serverInit(config, Object.fromEntries(identities.map((d) => [d.id, d.publicKey])));
  const clients = new Map<string, ClientState>();
  const refusals: string[] = [];
  for (const d of identities) {
    if (drop.beforeAdvertise?.has(d.id)) continue;
    const { state, message } = await clientAdvertiseKeys(config, d);
    clients.set(d.id, state);
    await serverReceive(server, message);
  }
  const broadcasts = await serverCloseAdvertise(server);
  for (const [id, b] of broadcasts) {
    if (drop.beforeShare?.has(id)) continue;
    const out = await orRefuse(refusals, id, () => clientShareKeys(clients.get(id)!, b));
    if (!out) continue;
    clients.set(id, out.state);
    await serverReceive(server, out.message);
  }
  const deliveries = serverCloseShares(server);
  for (const [id, d] of deliveries) {
    if (drop.beforeMasked?.has(id)) continue;
    const out = await orRefuse(refusals, id, () => clientMaskedInput(clients.get(id)!, d, inputs.get(id)!));
    if (!out) continue;
    clients.set(id, out.state);
    await serverReceive(server, out.message);
  }
  const request = serverCloseMasked(server);
  for (const id of request.survivors) {
    if (drop.beforeUnmask?.has(id)) continue;
    const out = await orRefuse(refusals, id, () => clientUnmask(clients.get(id)!, request));
    if (!out) continue;
    clients.set(id, out.state);
    await serverReceive(server, out.message);
  }
  return { result: await serverCloseUnmask(server), server, clients, refusals };
}

export function exactSum(inputs: Map<string, Uint32Array>, who: string[], length: number): Uint32Array {
  const sum = new Uint32Array(length);
  for (const id of who) {
    const x = inputs.get(id)!;
    for (let i = 0; i < length; i++) sum[i] = (sum[i]! + x[i]!) >>> 0;
  }
  return sum;
}
