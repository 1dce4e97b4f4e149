/**
 * SecAgg+ server side (Bonawitz et al., CCS 2017, Fig. 4, server steps; sparse graph per Bell et al., CCS 2020).
 * `serverReceive` checks one device message (round, stage, sender, signature, shape) and folds it into the
 * state — masked inputs go straight into one running sum, O(d) memory however many devices; `serverAdvance`
 * closes a stage and returns what to relay. The server learns only Σ inputs of the survivors (mod 2^32):
 * it holds ciphertexts it cannot open, and for each device at most one kind of share.
 */
import { equal } from './bytes.ts';
import { neighbourGraph } from './graph.ts';
import { pairSign, pairwiseMaskKey, selfMaskKey } from './keys.ts';
import {
  type AdvertiseKeys, type DeviceMessage, type KeysBroadcast, type RoundConfig, SecAggAbort, SecAggError, type ShareKeys,
  type RevealedShare, type SharesDelivery, type Stage, type Unmask, type UnmaskRequest, signingBytes,
} from './messages.ts';
import { sha256, verify, x25519PublicKey } from './primitives.ts';
import { addMask, expandMask } from './prg.ts';
import { combine } from './shamir.ts';

export interface ServerState {
  config: RoundConfig;
  stage: Stage | 'done' | 'aborted';
  /** Enrolled identity keys by device id; absent: devices are accepted with the key they advertise. */
  enrolled?: Record<string, Uint8Array>;
  ads: Record<string, AdvertiseKeys>;
  roster: string[];
  graph: Record<string, string[]>;
  shares: Record<string, ShareKeys>;
  sharers: string[];
  /** Running masked sum (mod 2^32) and who is in it, in arrival order. */
  sum: Uint32Array;
  survivors: string[];
  unmasks: Record<string, Unmask>;
  abortReason?: string;
}

export interface AggregateResult {
  /** Σ of the survivors' inputs, mod 2^32. */
  sum: Uint32Array;
  survivors: string[];
  /** Devices that shared keys but sent no input: their pairwise masks were removed. */
  dropped: string[];
}

export function serverInit(config: RoundConfig, enrolled?: Record<string, Uint8Array>): ServerState {
  if (!(config.threshold >= 1) || !(config.neighbours >= 1) || config.graphSeed.byteLength !== 32 || !(config.length >= 1)) {
    throw new SecAggError('round config: threshold, neighbours and length must be positive and the graph seed 32 bytes');
  }
  return { config, stage: 'advertise-keys', enrolled, ads: {}, roster: [], graph: {}, shares: {}, sharers: [], sum: new Uint32Array(config.length), survivors: [], unmasks: {} };
}

/** Set views of the state's lists, built once per state and stage (the lists themselves stay plain data). */
const views = new WeakMap<ServerState, { stage: ServerState['stage']; sharers: Set<string>; survivors: Set<string>; graph: Map<string, Set<string>> }>();
function view(state: ServerState) {
  let v = views.get(state);
  if (!v || v.stage !== state.stage) {
    v = { stage: state.stage, sharers: new Set(state.sharers), survivors: new Set(state.survivors), graph: new Map(Object.entries(state.graph).map(([k, l]) => [k, new Set(l)])) };
    views.set(state, v);
  }
  return v;
}

const refuse = (m: DeviceMessage, why: string): never => {
  throw new SecAggError(`${m.stage} from ${m.from}: ${why}`);
};

/** Checks one device message and records it. Throws SecAggError saying why a message is refused. */
export async function serverReceive(state: ServerState, m: DeviceMessage): Promise<void> {
  if (m.roundId !== state.config.roundId) refuse(m, `message for round '${m.roundId}', this is round '${state.config.roundId}' (replayed or misrouted)`);
  if (m.stage !== state.stage) refuse(m, `the round is at stage '${state.stage}'`);
  if (m.stage === 'advertise-keys') {
    if (state.ads[m.from]) refuse(m, 'this device already advertised keys');
    const enrolled = state.enrolled?.[m.from];
    if (state.enrolled && !enrolled) refuse(m, 'unknown device (not enrolled)');
    if (enrolled && !equal(enrolled, m.identityKey)) refuse(m, 'identity key is not the enrolled one');
    if (m.encryptionKey.byteLength !== 32 || m.maskKey.byteLength !== 32) refuse(m, 'public keys must be 32 bytes');
  } else {
    const ad = state.ads[m.from];
    if (!ad || !state.roster.includes(m.from)) refuse(m, 'not a participant of this round');
    if (!(await verify(ad!.identityKey, await signingBytes(m), m.signature))) refuse(m, 'bad signature');
  }
  if (m.stage === 'advertise-keys' && !(await verify(m.identityKey, await signingBytes(m), m.signature))) refuse(m, 'bad signature');

  switch (m.stage) {
    case 'advertise-keys':
      state.ads[m.from] = m;
      return;
    case 'share-keys': {
      if (state.shares[m.from]) refuse(m, 'this device already shared keys');
      const neighbours = state.graph[m.from]!;
      const to = m.ciphertexts.map((c) => c.to);
      if (to.length !== neighbours.length || new Set(to).size !== to.length || to.some((v) => !neighbours.includes(v))) refuse(m, 'ciphertexts must go to each neighbour exactly once');
      if (m.selfMaskCommitment.byteLength !== 32) refuse(m, 'self-mask commitment must be 32 bytes');
      state.shares[m.from] = m;
      return;
    }
    case 'masked-input': {
      const v = view(state);
      if (!v.sharers.has(m.from)) refuse(m, 'this device did not share keys');
      if (v.survivors.has(m.from)) refuse(m, 'this device already sent its input');
      if (!(m.masked instanceof Uint32Array) || m.masked.length !== state.config.length) refuse(m, `input must be ${state.config.length} words, got ${m.masked?.length}`);
      addMask(state.sum, m.masked, 1);
      state.survivors.push(m.from);
      v.survivors.add(m.from);
      return;
    }
    case 'unmask': {
      const v = view(state);
      const alive = v.survivors;
      if (!alive.has(m.from)) refuse(m, 'only devices whose input arrived take part in unmasking');
      if (state.unmasks[m.from]) refuse(m, 'this device already answered');
      const seen = new Set<string>();
      for (const s of m.shares) {
        if (seen.has(s.of)) refuse(m, `two shares of ${s.of}`);
        seen.add(s.of);
        if (!v.graph.get(m.from)!.has(s.of) || !v.sharers.has(s.of)) refuse(m, `holds no share of ${s.of}`);
        const want = alive.has(s.of) ? 'self-mask' : 'mask-key';
        if (s.kind !== want) refuse(m, `revealed a ${s.kind} share of ${s.of}, which needs its ${want} share`);
      }
      state.unmasks[m.from] = m;
      return;
    }
  }
}

function abort(state: ServerState, reason: string): never {
  state.stage = 'aborted';
  state.abortReason = reason;
  // Nothing partial leaves an aborted round.
  state.sum.fill(0);
  throw new SecAggAbort(reason);
}

/** Closes advertise-keys: fixes the roster and the graph; returns each participant's KeysBroadcast. */
export async function serverCloseAdvertise(state: ServerState): Promise<Map<string, KeysBroadcast>> {
  if (state.stage !== 'advertise-keys') throw new SecAggError(`cannot close advertise-keys at stage '${state.stage}'`);
  const roster = Object.keys(state.ads).sort();
  if (roster.length <= state.config.threshold) abort(state, `${roster.length} devices advertised keys; at least ${state.config.threshold + 1} are needed for threshold ${state.config.threshold}`);
  const graph = await neighbourGraph(roster, state.config.graphSeed, state.config.neighbours);
  state.roster = roster;
  state.graph = Object.fromEntries(graph);
  state.stage = 'share-keys';
  return new Map(roster.map((id) => [id, { roundId: state.config.roundId, roster, neighbours: graph.get(id)!.map((v) => state.ads[v]!) }]));
}

/** Closes share-keys: relays each ciphertext to the neighbour it is for. */
export function serverCloseShares(state: ServerState): Map<string, SharesDelivery> {
  if (state.stage !== 'share-keys') throw new SecAggError(`cannot close share-keys at stage '${state.stage}'`);
  state.sharers = Object.keys(state.shares).sort();
  if (state.sharers.length <= state.config.threshold) abort(state, `${state.sharers.length} devices shared keys; at least ${state.config.threshold + 1} are needed`);
  const out = new Map<string, SharesDelivery>(state.sharers.map((id) => [id, { roundId: state.config.roundId, ciphertexts: [] }]));
  for (const from of state.sharers) for (const c of state.shares[from]!.ciphertexts) out.get(c.to)?.ciphertexts.push({ from, data: c.data });
  state.stage = 'masked-input';
  return out;
}

/** Closes masked-input: the survivors are fixed; every survivor gets the same UnmaskRequest. */
export function serverCloseMasked(state: ServerState): UnmaskRequest {
  if (state.stage !== 'masked-input') throw new SecAggError(`cannot close masked-input at stage '${state.stage}'`);
  if (state.survivors.length < state.config.threshold) abort(state, `${state.survivors.length} masked inputs arrived, fewer than the threshold ${state.config.threshold}`);
  state.stage = 'unmask';
  return { roundId: state.config.roundId, survivors: [...state.survivors].sort() };
}

/**
 * Closes unmask: reconstructs each survivor's self-mask seed and each dropped device's mask key from ≥ t shares,
 * checks them against the commitment / advertised public key, removes the masks and returns the sum.
 */
export async function serverFinish(state: ServerState): Promise<AggregateResult> {
  if (state.stage !== 'unmask') throw new SecAggError(`cannot finish at stage '${state.stage}'`);
  const { config } = state;
  const byOwner = new Map<string, RevealedShare[]>();
  for (const u of Object.values(state.unmasks)) for (const s of u.shares) byOwner.set(s.of, [...(byOwner.get(s.of) ?? []), s]);
  const sharesOf = (device: string) => byOwner.get(device) ?? [];
  const alive = new Set(state.survivors);
  const dropped = state.sharers.filter((v) => !alive.has(v));

  const selfKeys: Uint8Array[] = [];
  for (const u of state.survivors) {
    const shares = sharesOf(u);
    if (shares.length < config.threshold) abort(state, `only ${shares.length} shares of ${u}'s self mask arrived; ${config.threshold} are needed`);
    const seed = combine(shares.slice(0, config.threshold));
    if (!equal(await sha256(seed), state.shares[u]!.selfMaskCommitment)) abort(state, `the shares of ${u}'s self mask do not reconstruct its committed seed (a neighbour sent a bad share)`);
    selfKeys.push(await selfMaskKey(config.roundId, u, seed));
  }
  const pairKeys: { key: Uint8Array; sign: 1 | -1 }[] = [];
  for (const v of dropped) {
    const shares = sharesOf(v);
    if (shares.length < config.threshold) abort(state, `${v} dropped and only ${shares.length} shares of its mask key arrived; ${config.threshold} are needed`);
    const secret = combine(shares.slice(0, config.threshold));
    if (!equal(await x25519PublicKey(secret), state.ads[v]!.maskKey)) abort(state, `the shares of ${v}'s mask key do not reconstruct its advertised key (a neighbour sent a bad share)`);
    for (const w of state.graph[v]!) {
      // w masked with v only if w received v's shares, i.e. both shared keys; w's mask is in the sum only if w survived.
      if (!alive.has(w)) continue;
      // w added pairSign(w, v)·PRG(s_{w,v}); subtract it.
      pairKeys.push({ key: await pairwiseMaskKey(config.roundId, v, w, secret, state.ads[w]!.maskKey), sign: pairSign(w, v) === 1 ? -1 : 1 });
    }
  }
  // Masks are expanded one at a time (O(d) memory) and subtracted from the running sum.
  for (const key of selfKeys) addMask(state.sum, await expandMask(key, config.length), -1);
  for (const { key, sign } of pairKeys) addMask(state.sum, await expandMask(key, config.length), sign);
  state.stage = 'done';
  return { sum: state.sum, survivors: [...state.survivors].sort(), dropped };
}
