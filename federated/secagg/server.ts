/**
 * SecAgg+ server side (Bonawitz et al., CCS 2017, Fig. 4, server steps; sparse graph per Bell et al., CCS 2020).
 * `serverReceive` checks one device message (round, stage, sender, signature, shape) and folds it into the
 * state — masked inputs go straight into one running sum, O(d) memory however many devices; it is
 * `serverAuthenticate` (who sent it: cheap checks and the signature, before anything else is spent on it) then
 * `serverAccept`. The close functions end a stage and return what to relay. The server learns only Σ inputs of
 * the survivors (mod 2^32): it holds ciphertexts it cannot open, and for each device at most one kind of share.
 * No single device can stop a round from finishing: revealed shares are checked when they arrive (x is the
 * sender's place in the owner's neighbour list, y is 32 bytes) and reconstructed robustly at the end
 * (robust-reconstruct.ts), so a bad share costs the round at most that share.
 */
import { equal } from '../bytes.ts';
import { neighbourGraph } from './graph.ts';
import { pairSign, pairwiseMaskKey, selfMaskKey, usablePublicKey } from './keys.ts';
import {
  type AdvertiseKeys,
  type DeviceMessage,
  type KeysBroadcast,
  type RoundConfig,
  SecAggAbort,
  SecAggAuthError,
  SecAggError,
  type ShareKeys,
  SECRET_BYTES,
  type SharesDelivery,
  type Stage,
  type Unmask,
  type UnmaskRequest,
  signingBytes,
} from './messages.ts';
import { sha256, verify, x25519PublicKey } from './primitives.ts';
import { addMask, expandMask } from './prg.ts';
import { type HeldShare, reconstructChecked } from './robust-reconstruct.ts';

export interface ServerState {
  config: RoundConfig;
  stage: Stage | 'done' | 'aborted';
  /** Enrolled identity keys by device id; absent: devices are accepted with the key they advertise. */
  enrolled?: Record<string, Uint8Array> | undefined;
  ads: Record<string, AdvertiseKeys>;
  roster: string[];
  graph: Record<string, string[]>;
  shares: Record<string, ShareKeys>;
  sharers: string[];
  /** Running masked sum (mod 2^32) and who is in it, in arrival order. */
  sum: Uint32Array;
  survivors: string[];
  unmasks: Record<string, Unmask>;
  abortReason?: string | undefined;
}

export interface AggregateResult {
  /** Σ of the survivors' inputs, mod 2^32. */
  sum: Uint32Array;
  survivors: string[];
  /** Devices that shared keys but sent no input: their pairwise masks were removed. */
  dropped: string[];
  /** Devices that revealed shares not on their owner's polynomial (a share's sender or its dealer lied). */
  badShares: { holder: string; of: string }[];
}

export function serverInit(config: RoundConfig, enrolled?: Record<string, Uint8Array>): ServerState {
  if (
    !(config.threshold >= 1) ||
    !(config.neighbours >= 1) ||
    config.graphSeed.byteLength !== 32 ||
    !(config.length >= 1)
  ) {
    throw new SecAggError(
      'round config: threshold, neighbours and length must be positive and the graph seed 32 bytes',
    );
  }
  return {
    config,
    stage: 'advertise-keys',
    enrolled,
    ads: {},
    roster: [],
    graph: {},
    shares: {},
    sharers: [],
    sum: new Uint32Array(config.length),
    survivors: [],
    unmasks: {},
  };
}

/** Set views of the state's lists, built once per state and stage (the lists themselves stay plain data). */
const views = new WeakMap<
  ServerState,
  { stage: ServerState['stage']; sharers: Set<string>; survivors: Set<string>; graph: Map<string, Set<string>> }
>();
function view(state: ServerState) {
  let v = views.get(state);
  if (!v || v.stage !== state.stage) {
    v = {
      stage: state.stage,
      sharers: new Set(state.sharers),
      survivors: new Set(state.survivors),
      graph: new Map(Object.entries(state.graph).map(([k, l]) => [k, new Set(l)])),
    };
    views.set(state, v);
  }
  return v;
}

const refuse = (m: DeviceMessage, why: string): never => {
  throw new SecAggError(`${m.stage} from ${m.from}: ${why}`);
};
const refuseSender = (m: DeviceMessage, why: string): never => {
  throw new SecAggAuthError(`${m.stage} from ${m.from}: ${why}`);
};

/** Checks one device message and records it. Throws SecAggError saying why a message is refused. */
export async function serverReceive(state: ServerState, m: DeviceMessage): Promise<void> {
  await serverAuthenticate(state, m);
  serverAccept(state, m);
}

/**
 * Who sent `m`, checked before anything else is spent on it: round and stage, that the sender may speak now
 * (enrolled for advertise-keys, on the roster after), and its Ed25519 signature. Throws SecAggError; nothing
 * in the state changes; SecAggAuthError when the sender is not who it claims or may not speak now.
 */
export async function serverAuthenticate(
  state: ServerState,
  m: DeviceMessage,
  payloadDigest?: Uint8Array,
): Promise<void> {
  if (m.roundId !== state.config.roundId)
    refuse(m, `message for round '${m.roundId}', this is round '${state.config.roundId}' (replayed or misrouted)`);
  if (m.stage !== state.stage) refuse(m, `the round is at stage '${state.stage}'`);
  let key: Uint8Array;
  if (m.stage === 'advertise-keys') {
    const enrolled = state.enrolled?.[m.from];
    if (state.enrolled && !enrolled) refuseSender(m, 'unknown device (not enrolled)');
    if (enrolled && !equal(enrolled, m.identityKey)) refuseSender(m, 'identity key is not the enrolled one');
    key = m.identityKey;
  } else {
    const ad = state.ads[m.from];
    if (!ad || !state.roster.includes(m.from)) refuseSender(m, 'not a participant of this round');
    key = ad!.identityKey;
  }
  if (!(await verify(key, await signingBytes(m, payloadDigest), m.signature))) refuseSender(m, 'bad signature');
  if (m.stage === 'advertise-keys' && !((await usablePublicKey(m.encryptionKey)) && (await usablePublicKey(m.maskKey))))
    refuse(m, 'a public key is a low-order point (no key can be agreed with it)');
}

/** Folds an authenticated message into the state, after checking its content. Throws SecAggError when refused. */
export function serverAccept(state: ServerState, m: DeviceMessage): void {
  if (m.stage !== state.stage) refuse(m, `the round is at stage '${state.stage}'`);
  switch (m.stage) {
    case 'advertise-keys':
      if (state.ads[m.from]) refuse(m, 'this device already advertised keys');
      if (m.encryptionKey.byteLength !== 32 || m.maskKey.byteLength !== 32) refuse(m, 'public keys must be 32 bytes');
      state.ads[m.from] = m;
      return;
    case 'share-keys': {
      if (state.shares[m.from]) refuse(m, 'this device already shared keys');
      const neighbours = state.graph[m.from]!;
      const to = m.ciphertexts.map((c) => c.to);
      if (to.length !== neighbours.length || new Set(to).size !== to.length || to.some((v) => !neighbours.includes(v)))
        refuse(m, 'ciphertexts must go to each neighbour exactly once');
      if (m.selfMaskCommitment.byteLength !== 32) refuse(m, 'self-mask commitment must be 32 bytes');
      state.shares[m.from] = m;
      return;
    }
    case 'masked-input': {
      const v = view(state);
      if (!v.sharers.has(m.from)) refuse(m, 'this device did not share keys');
      if (v.survivors.has(m.from)) refuse(m, 'this device already sent its input');
      if (!(m.masked instanceof Uint32Array) || m.masked.length !== state.config.length)
        refuse(m, `input must be ${state.config.length} words, got ${m.masked?.length}`);
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
        // The owner gave its i-th neighbour (sorted) the share at x = i + 1 (client.ts): any other x, or a y that is
        // not one secret's length, is not that share — refused here, so it can never reach interpolation.
        const x = state.graph[s.of]!.indexOf(m.from) + 1;
        if (s.x !== x) refuse(m, `its share of ${s.of} must be at x = ${x}, got ${s.x}`);
        if (!(s.y instanceof Uint8Array) || s.y.byteLength !== SECRET_BYTES)
          refuse(m, `its share of ${s.of} must be ${SECRET_BYTES} bytes, got ${s.y?.byteLength}`);
      }
      state.unmasks[m.from] = m;
      return;
    }
  }
}

/**
 * A masked input that arrives in chunks (it is never whole in memory): the same checks as serverAccept, then each
 * chunk of words is added to the running sum at its offset. `chunks` must cover the input's `length` words exactly
 * once, in order (the caller has checked the total and authenticated the sender with the streamed digest).
 */
export function serverAcceptMaskedChunks(state: ServerState, from: string, chunks: Iterable<Uint32Array>): void {
  const m = { stage: 'masked-input', from } as DeviceMessage;
  if (state.stage !== 'masked-input') refuse(m, `the round is at stage '${state.stage}'`);
  const v = view(state);
  if (!v.sharers.has(from)) refuse(m, 'this device did not share keys');
  if (v.survivors.has(from)) refuse(m, 'this device already sent its input');
  let offset = 0;
  for (const words of chunks) {
    if (offset + words.length > state.config.length)
      throw new SecAggError(`masked-input from ${from}: more than ${state.config.length} words`);
    addMask(state.sum.subarray(offset, offset + words.length), words, 1);
    offset += words.length;
  }
  // The caller checked the length first; a short input here would leave a partial mask in the sum.
  if (offset !== state.config.length)
    throw new Error(`masked-input from ${from}: ${offset} of ${state.config.length} words were added`);
  state.survivors.push(from);
  v.survivors.add(from);
}

/** `reason` names no device (it is shown publicly); `detail`, for the operator, may. */
function abort(state: ServerState, reason: string, detail?: string): never {
  state.stage = 'aborted';
  state.abortReason = reason;
  // Nothing partial leaves an aborted round.
  state.sum.fill(0);
  throw new SecAggAbort(reason, detail);
}

/** Closes advertise-keys: fixes the roster and the graph; returns each participant's KeysBroadcast. */
export async function serverCloseAdvertise(state: ServerState): Promise<Map<string, KeysBroadcast>> {
  if (state.stage !== 'advertise-keys') throw new SecAggError(`cannot close advertise-keys at stage '${state.stage}'`);
  const roster = Object.keys(state.ads).sort();
  if (roster.length <= state.config.threshold)
    abort(
      state,
      `${roster.length} devices advertised keys; at least ${state.config.threshold + 1} are needed for threshold ${state.config.threshold}`,
    );
  const graph = await neighbourGraph(roster, state.config.graphSeed, state.config.neighbours);
  state.roster = roster;
  state.graph = Object.fromEntries(graph);
  state.stage = 'share-keys';
  return new Map(
    roster.map((id) => [
      id,
      { roundId: state.config.roundId, roster, neighbours: graph.get(id)!.map((v) => state.ads[v]!) },
    ]),
  );
}

/** Closes share-keys: relays each ciphertext to the neighbour it is for. */
export function serverCloseShares(state: ServerState): Map<string, SharesDelivery> {
  if (state.stage !== 'share-keys') throw new SecAggError(`cannot close share-keys at stage '${state.stage}'`);
  state.sharers = Object.keys(state.shares).sort();
  if (state.sharers.length <= state.config.threshold)
    abort(state, `${state.sharers.length} devices shared keys; at least ${state.config.threshold + 1} are needed`);
  const out = new Map<string, SharesDelivery>(
    state.sharers.map((id) => [id, { roundId: state.config.roundId, ciphertexts: [] }]),
  );
  for (const from of state.sharers)
    for (const c of state.shares[from]!.ciphertexts) out.get(c.to)?.ciphertexts.push({ from, data: c.data });
  state.stage = 'masked-input';
  return out;
}

/** Closes masked-input: the survivors are fixed; every survivor gets the same UnmaskRequest. */
export function serverCloseMasked(state: ServerState): UnmaskRequest {
  if (state.stage !== 'masked-input') throw new SecAggError(`cannot close masked-input at stage '${state.stage}'`);
  if (state.survivors.length < state.config.threshold)
    abort(state, `${state.survivors.length} masked inputs arrived, fewer than the threshold ${state.config.threshold}`);
  state.stage = 'unmask';
  return { roundId: state.config.roundId, survivors: [...state.survivors].sort() };
}

/**
 * Closes unmask: reconstructs each survivor's self-mask seed and each dropped device's mask key from ≥ t shares,
 * checked against the commitment / advertised public key (robustly: with more than t shares, bad ones are found
 * and left out), removes the masks and returns the sum. Aborts (SecAggAbort, sum zeroed) only when some secret
 * cannot be reconstructed from the good shares that arrived.
 */
export async function serverCloseUnmask(state: ServerState): Promise<AggregateResult> {
  if (state.stage !== 'unmask') throw new SecAggError(`cannot finish at stage '${state.stage}'`);
  const { config } = state;
  const byOwner = new Map<string, HeldShare[]>();
  for (const [holder, u] of Object.entries(state.unmasks).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const s of u.shares) byOwner.set(s.of, [...(byOwner.get(s.of) ?? []), { holder, x: s.x, y: s.y }]);
  }
  const alive = new Set(state.survivors);
  const dropped = state.sharers.filter((v) => !alive.has(v));
  const badShares: AggregateResult['badShares'] = [];
  const suspects = new Set<string>();

  /** The checked secret of `owner`, trusting shares of devices caught lying least. */
  const secretOf = async (
    owner: string,
    what: { public: string; named: string },
    check: (secret: Uint8Array) => Promise<boolean>,
  ): Promise<Uint8Array> => {
    const shares = [...(byOwner.get(owner) ?? [])].sort(
      (a, b) => Number(suspects.has(a.holder)) - Number(suspects.has(b.holder)),
    );
    const few = (w: string) => `only ${shares.length} shares of ${w} arrived; ${config.threshold} are needed`;
    if (shares.length < config.threshold) abort(state, few(what.public), few(what.named));
    const r = await reconstructChecked(shares, config.threshold, check);
    const bad = (w: string, who: string) =>
      `the ${shares.length} shares of ${w} do not reconstruct it (at least one of ${who} sent a bad share, and no ${config.threshold} good ones were found)`;
    if (!r) abort(state, bad(what.public, 'their holders'), bad(what.named, shares.map((s) => s.holder).join(', ')));
    for (const holder of r!.bad) badShares.push({ holder, of: owner }), suspects.add(holder);
    return r!.secret;
  };

  const selfKeys: Uint8Array[] = [];
  for (const u of state.survivors) {
    const commitment = state.shares[u]!.selfMaskCommitment;
    const seed = await secretOf(u, { public: "a survivor's self mask", named: `${u}'s self mask` }, async (s) =>
      equal(await sha256(s), commitment),
    );
    selfKeys.push(await selfMaskKey(config.roundId, u, seed));
  }
  const pairKeys: { key: Uint8Array; sign: 1 | -1 }[] = [];
  for (const v of dropped) {
    const advertised = state.ads[v]!.maskKey;
    const what = { public: "a dropped device's mask key", named: `${v}'s mask key (it dropped)` };
    const secret = await secretOf(v, what, async (s) => equal(await x25519PublicKey(s), advertised));
    for (const w of state.graph[v]!) {
      // w masked with v only if w received v's shares, i.e. both shared keys; w's mask is in the sum only if w survived.
      if (!alive.has(w)) continue;
      // w added pairSign(w, v)·PRG(s_{w,v}); subtract it.
      pairKeys.push({
        key: await pairwiseMaskKey(config.roundId, v, w, secret, state.ads[w]!.maskKey),
        sign: pairSign(w, v) === 1 ? -1 : 1,
      });
    }
  }
  // Masks are expanded one at a time (O(d) memory) and subtracted from the running sum.
  for (const key of selfKeys) addMask(state.sum, await expandMask(key, config.length), -1);
  for (const { key, sign } of pairKeys) addMask(state.sum, await expandMask(key, config.length), sign);
  state.stage = 'done';
  return { sum: state.sum, survivors: [...state.survivors].sort(), dropped, badShares };
}
