/**
 * SecAgg+ device side (Bonawitz et al., CCS 2017, Fig. 4 "Round 0–4", on the sparse graph of Bell et al.,
 * CCS 2020): four stage functions, each (state, what the server relayed) → (new state, message to send).
 * No I/O: the caller moves messages. State is plain data, so a device may persist it between stages.
 */
import { equal, framed, unframe } from '../bytes.ts';
import { neighbourGraph } from './graph.ts';
import { pairSign, pairwiseMaskKey, selfMaskKey, shareEncryptionKey } from './keys.ts';
import {
  type AdvertiseKeys,
  type KeysBroadcast,
  type MaskedInput,
  type RevealedShare,
  type RoundConfig,
  SecAggError,
  type ShareKeys,
  type SharesDelivery,
  type Unmask,
  type UnmaskRequest,
  SECRET_BYTES,
  signingBytes,
} from './messages.ts';
import { ed25519PublicKey, open, seal, sha256, sign, verify, x25519PublicKey } from './primitives.ts';
import { randomBytes } from '../random.ts';
import { addMask, expandMask } from './prg.ts';
import { split } from './shamir.ts';
import { UnsafeRoundError, checkRoundParameters, minContributors } from './round-policy.ts';
import { usablePublicKey } from './keys.ts';

export interface DeviceIdentity {
  id: string;
  /** Ed25519 seed: the device's long-term signing key. */
  seed: Uint8Array;
  publicKey: Uint8Array;
}

export async function createIdentity(id: string, seed = randomBytes(32)): Promise<DeviceIdentity> {
  return { id, seed, publicKey: await ed25519PublicKey(seed) };
}

interface HeldShare {
  x: number;
  maskKey: Uint8Array;
  selfMask: Uint8Array;
}

export interface ClientState {
  config: RoundConfig;
  identity: DeviceIdentity;
  stage: 'advertised' | 'shared' | 'masked' | 'unmasked';
  encryptionSecret: Uint8Array;
  maskSecret: Uint8Array;
  neighbours: Record<string, AdvertiseKeys>;
  selfSeed?: Uint8Array;
  /** Shares neighbours gave this device to hold, by whose secret they are. */
  held: Record<string, HeldShare>;
  /** The x of the share each neighbour deals this device: its place in that neighbour's sorted list, plus one. */
  shareX?: Record<string, number>;
}

async function signed<M extends AdvertiseKeys | ShareKeys | MaskedInput | Unmask>(
  identity: DeviceIdentity,
  m: Omit<M, 'signature'>,
): Promise<M> {
  const message = { ...m, signature: new Uint8Array(64) } as M;
  message.signature = await sign(identity.seed, await signingBytes(message));
  return message;
}

function expectStage(state: ClientState, stage: ClientState['stage'], next: string): void {
  if (state.stage !== stage)
    throw new SecAggError(
      `${next}: this device is at stage '${state.stage}', not '${stage}' (out of order or repeated)`,
    );
}

/**
 * Round 0 (AdvertiseKeys): two fresh X25519 key pairs for this round. Refuses (UnsafeRoundError, nothing sent)
 * a round whose parameters would let the server learn this device's input (round-policy.ts).
 */
export async function clientAdvertiseKeys(
  config: RoundConfig,
  identity: DeviceIdentity,
): Promise<{ state: ClientState; message: AdvertiseKeys }> {
  checkRoundParameters(config);
  const encryptionSecret = randomBytes(32),
    maskSecret = randomBytes(32);
  const message = await signed<AdvertiseKeys>(identity, {
    stage: 'advertise-keys',
    roundId: config.roundId,
    from: identity.id,
    identityKey: identity.publicKey,
    encryptionKey: await x25519PublicKey(encryptionSecret),
    maskKey: await x25519PublicKey(maskSecret),
  });
  return {
    state: { config, identity, stage: 'advertised', encryptionSecret, maskSecret, neighbours: {}, held: {} },
    message,
  };
}

/**
 * Round 1 (ShareKeys): check the neighbours' signed keys against the graph this device computes itself, then
 * Shamir-share the mask secret and a fresh self-mask seed t-of-k among them, each neighbour's shares encrypted to it.
 */
export async function clientShareKeys(
  prev: ClientState,
  broadcast: KeysBroadcast,
  trustedKeys?: ReadonlyMap<string, Uint8Array>,
): Promise<{ state: ClientState; message: ShareKeys }> {
  expectStage(prev, 'advertised', 'share-keys');
  const { config, identity } = prev;
  if (broadcast.roundId !== config.roundId)
    throw new SecAggError(`share-keys: keys for round '${broadcast.roundId}', this is round '${config.roundId}'`);
  if (!broadcast.roster.includes(identity.id)) throw new SecAggError('share-keys: this device is not on the roster');
  if (new Set(broadcast.roster).size !== broadcast.roster.length)
    throw new SecAggError('share-keys: the roster repeats a device');
  if (broadcast.roster.length < minContributors(config))
    throw new UnsafeRoundError(
      `share-keys: a roster of ${broadcast.roster.length}, fewer than the ${minContributors(config)} contributors this device requires`,
    );
  const graph = await neighbourGraph(broadcast.roster, config.graphSeed, config.neighbours);
  const mine = graph.get(identity.id)!;
  const ads = new Map(broadcast.neighbours.map((a) => [a.from, a]));
  if (ads.size !== broadcast.neighbours.length) throw new SecAggError('share-keys: a neighbour appears twice');
  if (mine.length !== ads.size || mine.some((v) => !ads.has(v)))
    throw new SecAggError('share-keys: the neighbours sent are not the ones the round graph gives');
  if (mine.length < config.threshold)
    throw new SecAggError(`share-keys: ${mine.length} neighbours, fewer than the threshold ${config.threshold}`);
  for (const ad of ads.values()) {
    if (ad.roundId !== config.roundId || ad.stage !== 'advertise-keys')
      throw new SecAggError(`share-keys: ${ad.from}'s keys are for another round or stage`);
    const trusted = trustedKeys?.get(ad.from);
    if (trusted && !equal(trusted, ad.identityKey))
      throw new SecAggError(`share-keys: ${ad.from} signs with a key that is not its enrolled one`);
    if (!(await verify(ad.identityKey, await signingBytes(ad), ad.signature)))
      throw new SecAggError(`share-keys: ${ad.from}'s key advertisement has a bad signature`);
    if (!((await usablePublicKey(ad.encryptionKey)) && (await usablePublicKey(ad.maskKey))))
      throw new SecAggError(`share-keys: ${ad.from} advertised a low-order public key`);
  }
  const selfSeed = randomBytes(32);
  const xs = mine.map((_, i) => i + 1);
  const maskKeyShares = split(prev.maskSecret, config.threshold, xs);
  const selfShares = split(selfSeed, config.threshold, xs);
  const ciphertexts = await Promise.all(
    mine.map(async (v, i) => {
      const key = await shareEncryptionKey(
        config.roundId,
        identity.id,
        v,
        prev.encryptionSecret,
        ads.get(v)!.encryptionKey,
      );
      const plaintext = framed(identity.id, v, String(xs[i]), maskKeyShares[i]!.y, selfShares[i]!.y);
      return { to: v, data: seal(key, plaintext) };
    }),
  );
  const message = await signed<ShareKeys>(identity, {
    stage: 'share-keys',
    roundId: config.roundId,
    from: identity.id,
    selfMaskCommitment: await sha256(selfSeed),
    ciphertexts,
  });
  const shareX = Object.fromEntries(mine.map((v) => [v, graph.get(v)!.indexOf(identity.id) + 1]));
  return { state: { ...prev, stage: 'shared', neighbours: Object.fromEntries(ads), selfSeed, shareX }, message };
}

/**
 * Round 2 (MaskedInputCollection): decrypt and keep the shares neighbours sent, then send
 * y = x + PRG(b_u) + Σ_v ±PRG(s_{u,v}) over the neighbours that shared keys (mod 2^32).
 */
export async function clientMaskedInput(
  prev: ClientState,
  delivery: SharesDelivery,
  input: Uint32Array,
): Promise<{ state: ClientState; message: MaskedInput }> {
  expectStage(prev, 'shared', 'masked-input');
  const { config, identity } = prev;
  if (delivery.roundId !== config.roundId)
    throw new SecAggError(`masked-input: shares for round '${delivery.roundId}', this is round '${config.roundId}'`);
  if (input.length !== config.length)
    throw new SecAggError(`masked-input: input has ${input.length} words, the round expects ${config.length}`);
  const held: Record<string, HeldShare> = {};
  const dec = new TextDecoder();
  for (const c of delivery.ciphertexts) {
    const ad = prev.neighbours[c.from];
    if (!ad) throw new SecAggError(`masked-input: ${c.from} is not a neighbour of this device`);
    if (held[c.from]) throw new SecAggError(`masked-input: two ciphertexts from ${c.from}`);
    const key = await shareEncryptionKey(config.roundId, identity.id, c.from, prev.encryptionSecret, ad.encryptionKey);
    const plain = open(key, c.data);
    if (!plain)
      throw new SecAggError(
        `masked-input: the ciphertext from ${c.from} does not decrypt (tampered or not for this device)`,
      );
    const [from, to, x, maskKey, selfMask] = unframe(plain) ?? [];
    if (!from || !to || !x || !maskKey || !selfMask || dec.decode(from) !== c.from || dec.decode(to) !== identity.id) {
      throw new SecAggError(`masked-input: the ciphertext from ${c.from} names other parties`);
    }
    // The share this device holds is at its own place in the sender's neighbour list (as clientShareKeys deals
    // them); anything else would be refused by the server at unmasking, so it is refused here, naming the sender.
    const share = { x: Number(dec.decode(x)), maskKey: maskKey.slice(), selfMask: selfMask.slice() };
    if (
      share.x !== prev.shareX?.[c.from] ||
      share.maskKey.byteLength !== SECRET_BYTES ||
      share.selfMask.byteLength !== SECRET_BYTES
    ) {
      throw new SecAggError(
        `masked-input: the shares from ${c.from} are malformed (x ${share.x}, expected ${prev.shareX?.[c.from]}; ${SECRET_BYTES}-byte secrets)`,
      );
    }
    held[c.from] = share;
  }
  const sharers = Object.keys(held);
  if (sharers.length < config.threshold) {
    // With fewer than t neighbours left, the server could reconstruct this device's self mask alone.
    throw new SecAggError(
      `masked-input: only ${sharers.length} neighbours shared keys, fewer than the threshold ${config.threshold}; refusing to send an input`,
    );
  }
  const masked = input.slice();
  addMask(masked, await expandMask(await selfMaskKey(config.roundId, identity.id, prev.selfSeed!), config.length), 1);
  for (const v of sharers) {
    const key = await pairwiseMaskKey(config.roundId, identity.id, v, prev.maskSecret, prev.neighbours[v]!.maskKey);
    addMask(masked, await expandMask(key, config.length), pairSign(identity.id, v));
  }
  const message = await signed<MaskedInput>(identity, {
    stage: 'masked-input',
    roundId: config.roundId,
    from: identity.id,
    masked,
  });
  return { state: { ...prev, stage: 'masked', held }, message };
}

/**
 * Round 4 (Unmasking): for each neighbour that shared keys, reveal its self-mask share if it survived, else its
 * mask-key share — never both for one neighbour, and only once per round (the stage moves to 'unmasked').
 */
export async function clientUnmask(
  prev: ClientState,
  request: UnmaskRequest,
): Promise<{ state: ClientState; message: Unmask }> {
  expectStage(prev, 'masked', 'unmask');
  const { config, identity } = prev;
  if (request.roundId !== config.roundId)
    throw new SecAggError(`unmask: request for round '${request.roundId}', this is round '${config.roundId}'`);
  const survivors = new Set(request.survivors);
  if (survivors.size !== request.survivors.length) throw new SecAggError('unmask: the survivor list repeats a device');
  if (!survivors.has(identity.id))
    throw new SecAggError('unmask: this device is not among the survivors, though it sent its input');
  if (survivors.size < config.threshold)
    throw new SecAggError(`unmask: ${survivors.size} survivors, fewer than the threshold ${config.threshold}`);
  if (survivors.size < minContributors(config))
    throw new UnsafeRoundError(
      `unmask: ${survivors.size} survivors, fewer than the ${minContributors(config)} contributors this device requires (the others could subtract their own inputs from the sum)`,
    );
  const shares: RevealedShare[] = Object.entries(prev.held).map(([of, h]) =>
    survivors.has(of)
      ? { of, kind: 'self-mask', x: h.x, y: h.selfMask }
      : { of, kind: 'mask-key', x: h.x, y: h.maskKey },
  );
  const message = await signed<Unmask>(identity, {
    stage: 'unmask',
    roundId: config.roundId,
    from: identity.id,
    shares,
  });
  return { state: { ...prev, stage: 'unmasked' }, message };
}
