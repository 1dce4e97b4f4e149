/**
 * SecAgg+ (federated/secagg): whole rounds with random n, k, t, d and dropouts at every stage; the masked vector's
 * uniformity; and every refusal a device or the server must make.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  clientAdvertiseKeys,
  clientMaskedInput,
  clientShareKeys,
  clientUnmask,
} from '../../../federated/secagg/client.ts';
import {
  type AdvertiseKeys,
  type MaskedInput,
  SecAggAbort,
  SecAggAuthError,
  SecAggError,
  signingBytes,
} from '../../../federated/secagg/messages.ts';
import {
  serverCloseAdvertise,
  serverCloseMasked,
  serverCloseShares,
  serverCloseUnmask,
  serverInit,
  serverReceive,
} from '../../../federated/secagg/server.ts';
import { secAggParameters } from '../../../federated/secagg/parameters.ts';
import { neighbourGraph } from '../../../federated/secagg/graph.ts';
import { sign } from '../../../federated/secagg/primitives.ts';
import { randomBytes } from '../../../federated/random.ts';
import { decodeMessage, encodeMessage } from '../../../federated/secagg/wire.ts';
import { exactSum, makeIdentities, roundConfig, runRound } from './secagg-harness.ts';

const randomInputs = (ids: string[], d: number) =>
  new Map(ids.map((id) => [id, crypto.getRandomValues(new Uint32Array(d))]));

describe('SecAgg+ rounds', () => {
  it('the unmasked sum equals the exact sum (mod 2^32) of the survivors’ inputs, whoever drops out at whatever stage', async () => {
    const identities = await makeIdentities(14);
    let completed = 0,
      aborted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 3, max: 14 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            k: fc.integer({ min: 1, max: Math.max(1, Math.floor((n - 1) / 2)) }).map((h) => Math.min(2 * h, n - 1)),
            tFrac: fc.double({ min: 0.3, max: 1, noNaN: true }),
            d: fc.integer({ min: 1, max: 40 }),
            stages: fc.array(fc.constantFrom('none', 'none', 'none', 'advertise', 'share', 'masked', 'unmask'), {
              minLength: n,
              maxLength: n,
            }),
          }),
        ),
        async ({ n, k, tFrac, d, stages }) => {
          const ids = identities.slice(0, n);
          // Devices refuse t ≤ k/2 (round-policy.ts): t ranges over the majorities of k.
          const t = Math.min(k, Math.floor(k / 2) + 1 + Math.floor(tFrac * (k - Math.floor(k / 2) - 1)));
          const config = roundConfig({ neighbours: k, threshold: t, length: d });
          const inputs = randomInputs(
            ids.map((i) => i.id),
            d,
          );
          const at = (s: string) => new Set(ids.filter((_, i) => stages[i] === s).map((i) => i.id));
          try {
            const run = await runRound(config, ids, inputs, {
              beforeAdvertise: at('advertise'),
              beforeShare: at('share'),
              beforeMasked: at('masked'),
              beforeUnmask: at('unmask'),
            });
            expect(run.result.sum).toEqual(exactSum(inputs, run.result.survivors, d));
            // Survivors are exactly those whose input arrived; nobody who dropped before sending it is in the sum.
            for (const id of at('advertise')) expect(run.result.survivors).not.toContain(id);
            for (const id of at('masked')) expect(run.result.survivors).not.toContain(id);
            completed++;
          } catch (e) {
            if (!(e instanceof SecAggAbort)) throw e;
            expect(e.message).toMatch(/fewer than|are needed|at least/);
            aborted++;
          }
        },
      ),
      { numRuns: 60, seed: 20250617 },
    );
    expect(completed).toBeGreaterThan(5);
    expect(aborted).toBeGreaterThan(0);
  }, 120_000);

  it('a 40-device round on a sparse graph (k = 8) survives 30 % dropout after key sharing', async () => {
    const identities = await makeIdentities(40);
    const config = roundConfig({ neighbours: 8, threshold: 5, length: 500 });
    const inputs = randomInputs(
      identities.map((i) => i.id),
      500,
    );
    // 12 of 40 drop after sharing keys, chosen so that every device keeps ≥ t live neighbours (else the round
    // must abort, which the property test above covers): greedily, over the graph the round will use.
    const graph = await neighbourGraph(
      identities.map((i) => i.id),
      config.graphSeed,
      8,
    );
    // With k = 8 and t = 5 each device may lose at most 3 neighbours, so one greedy pass can get stuck below 12:
    // retry over random orders of the devices until a valid set of 12 appears.
    let drop = new Set<string>();
    for (let attempt = 0; attempt < 200 && drop.size < 12; attempt++) {
      drop = new Set<string>();
      const live = (id: string) => graph.get(id)!.filter((v) => !drop.has(v)).length;
      const order = identities.map((i) => i.id).sort(() => Math.random() - 0.5);
      for (const id of order) {
        if (drop.size === 12) break;
        drop.add(id);
        if ([id, ...graph.get(id)!].some((v) => live(v) < 5)) drop.delete(id);
      }
    }
    expect(drop.size).toBe(12);
    const run = await runRound(config, identities, inputs, { beforeMasked: drop });
    expect(run.result.dropped.sort()).toEqual([...drop].sort());
    expect(run.result.survivors).toHaveLength(28); // 30 % dropout
    expect(run.result.sum).toEqual(exactSum(inputs, run.result.survivors, 500));
    // Sparse: each device holds shares of its 8 neighbours only, not of all 39 others.
    for (const c of run.clients.values()) expect(Object.keys(c.neighbours)).toHaveLength(8);
  });

  it('aborts with a reason and releases nothing when fewer than t survive', async () => {
    const identities = await makeIdentities(6);
    const config = roundConfig({ neighbours: 4, threshold: 3, length: 8 });
    const inputs = randomInputs(
      identities.map((i) => i.id),
      8,
    );
    const drop = new Set(identities.slice(0, 4).map((i) => i.id));
    const err = await runRound(config, identities, inputs, { beforeMasked: drop }).catch((e) => e);
    expect(err).toBeInstanceOf(SecAggAbort);
    expect(err.message).toMatch(/2 masked inputs arrived, fewer than the threshold 3/);
  });
});

describe('what one masked vector reveals', () => {
  it('an all-zero input, masked, passes a χ² uniformity test on its bytes', async () => {
    const identities = await makeIdentities(5);
    const d = 8192;
    const config = roundConfig({ neighbours: 4, threshold: 3, length: d });
    const server = serverInit(config);
    const states = new Map();
    for (const id of identities) {
      const { state, message } = await clientAdvertiseKeys(config, id);
      states.set(id.id, state);
      await serverReceive(server, message);
    }
    for (const [id, b] of await serverCloseAdvertise(server)) {
      const { state, message } = await clientShareKeys(states.get(id), b);
      states.set(id, state);
      await serverReceive(server, message);
    }
    const deliveries = serverCloseShares(server);
    const { message } = await clientMaskedInput(
      states.get(identities[0]!.id),
      deliveries.get(identities[0]!.id)!,
      new Uint32Array(d),
    );
    const bytes = new Uint8Array(message.masked.buffer);
    const counts = new Array(256).fill(0);
    for (const b of bytes) counts[b]++;
    const expected = bytes.length / 256;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 255 degrees of freedom: P(χ² > 330.5) ≈ 0.001 for truly uniform bytes.
    expect(chi2).toBeLessThan(330.5);
  });
});

describe('refusals', () => {
  async function started(n = 5) {
    const identities = await makeIdentities(n);
    const config = roundConfig({ neighbours: 4, threshold: 3, length: 16 });
    const server = serverInit(config, Object.fromEntries(identities.map((d) => [d.id, d.publicKey])));
    const states = new Map();
    const ads: AdvertiseKeys[] = [];
    for (const id of identities) {
      const { state, message } = await clientAdvertiseKeys(config, id);
      states.set(id.id, state);
      ads.push(message);
      await serverReceive(server, message);
    }
    return { identities, config, server, states, ads };
  }

  it('server: wrong round (replay), out-of-order stage, duplicate device, unknown device, forged signature', async () => {
    const { identities, config, server, states, ads } = await started();
    const other = serverInit({ ...config, roundId: 'another-round' });
    await expect(serverReceive(other, ads[0]!)).rejects.toThrow(/replayed or misrouted/);
    await expect(serverReceive(server, ads[0]!)).rejects.toThrow(/already advertised/);
    const masked: MaskedInput = {
      stage: 'masked-input',
      roundId: config.roundId,
      from: identities[0]!.id,
      masked: new Uint32Array(16),
      signature: new Uint8Array(64),
    };
    await expect(serverReceive(server, masked)).rejects.toThrow(/the round is at stage 'advertise-keys'/);
    const stranger = (await makeIdentities(1))[0]!;
    const enrolledOnly = serverInit(config, {
      [identities[0]!.id]: identities[0]!.publicKey,
      [identities[1]!.id]: identities[1]!.publicKey,
    });
    const { message: strangerAd } = await clientAdvertiseKeys(config, { ...stranger, id: 'device-9999' });
    await expect(serverReceive(enrolledOnly, strangerAd)).rejects.toThrow(/unknown device/);
    await expect(serverReceive(enrolledOnly, strangerAd)).rejects.toBeInstanceOf(SecAggAuthError);
    // Someone else's key under an enrolled id: refused before the signature is even considered.
    const { message: impostor } = await clientAdvertiseKeys(config, { ...stranger, id: identities[1]!.id });
    await expect(serverReceive(enrolledOnly, impostor)).rejects.toThrow(/not the enrolled one/);
    await expect(serverReceive(enrolledOnly, impostor)).rejects.toBeInstanceOf(SecAggAuthError);
    // A valid advertisement whose mask key was swapped in transit.
    const fresh = serverInit(config);
    await expect(serverReceive(fresh, { ...ads[2]!, maskKey: randomBytes(32) })).rejects.toThrow(/bad signature/);
    await expect(serverReceive(fresh, { ...ads[2]!, maskKey: randomBytes(32) })).rejects.toBeInstanceOf(
      SecAggAuthError,
    );
    // Out of stage is a protocol error, not an authentication one (the route answers 422, not 403).
    await expect(serverReceive(server, masked)).rejects.not.toBeInstanceOf(SecAggAuthError);
  });

  it('devices: a tampered key advertisement or share ciphertext is refused, naming the sender', async () => {
    const { identities, server, states } = await started();
    const broadcasts = await serverCloseAdvertise(server);
    const a = identities[0]!.id;
    const b = broadcasts.get(a)!;
    const forged = {
      ...b,
      neighbours: b.neighbours.map((n, i) => (i === 0 ? { ...n, encryptionKey: randomBytes(32) } : n)),
    };
    await expect(clientShareKeys(states.get(a), forged)).rejects.toThrow(
      new RegExp(`${b.neighbours[0]!.from}'s key advertisement has a bad signature`),
    );
    await expect(clientShareKeys(states.get(a), { ...b, neighbours: b.neighbours.slice(1) })).rejects.toThrow(
      /not the ones the round graph gives/,
    );
    for (const [id, bc] of broadcasts) {
      const { state, message } = await clientShareKeys(states.get(id), bc);
      states.set(id, state);
      await serverReceive(server, message);
    }
    const deliveries = serverCloseShares(server);
    const mine = deliveries.get(a)!;
    const tampered = {
      ...mine,
      ciphertexts: mine.ciphertexts.map((c, i) =>
        i === 0 ? { ...c, data: c.data.map((x, j) => (j === 40 ? x ^ 1 : x)) } : c,
      ),
    };
    await expect(clientMaskedInput(states.get(a), tampered, new Uint32Array(16))).rejects.toThrow(
      new RegExp(`ciphertext from ${mine.ciphertexts[0]!.from} does not decrypt`),
    );
    await expect(clientMaskedInput(states.get(a), mine, new Uint32Array(15))).rejects.toThrow(
      /input has 15 words, the round expects 16/,
    );
  });

  it('wrong-length input, double submission, unmask twice, both kinds of share: refused', async () => {
    const { identities, config, server, states } = await started();
    for (const [id, bc] of await serverCloseAdvertise(server)) {
      const { state, message } = await clientShareKeys(states.get(id), bc);
      states.set(id, state);
      await serverReceive(server, message);
    }
    const deliveries = serverCloseShares(server);
    const ids = identities.map((i) => i.id);
    for (const id of ids.slice(0, 4)) {
      const { state, message } = await clientMaskedInput(
        states.get(id),
        deliveries.get(id)!,
        new Uint32Array(16).fill(1),
      );
      states.set(id, state);
      await serverReceive(server, message);
      await expect(serverReceive(server, message)).rejects.toThrow(/already sent its input/);
    }
    // The fifth device signs an input of the wrong length: refused on shape, not counted.
    const long: MaskedInput = {
      stage: 'masked-input',
      roundId: config.roundId,
      from: ids[4]!,
      masked: new Uint32Array(17),
      signature: new Uint8Array(64),
    };
    long.signature = await sign(identities[4]!.seed, await signingBytes(long));
    await expect(serverReceive(server, long)).rejects.toThrow(/input must be 16 words, got 17/);
    // The same vector under a signature that does not cover it: refused as forged.
    await expect(serverReceive(server, { ...long, masked: new Uint32Array(16) })).rejects.toThrow(/bad signature/);
    const request = serverCloseMasked(server);
    expect(request.survivors).toEqual(ids.slice(0, 4).sort());
    const { state: after, message: unmask } = await clientUnmask(states.get(ids[0]!), request);
    // Asked again — e.g. with a survivor list claiming someone else dropped — the device refuses: it has revealed once.
    await expect(clientUnmask(after, { ...request, survivors: request.survivors.slice(0, 3) })).rejects.toThrow(
      /stage 'unmasked'/,
    );
    // A share of the wrong kind (a survivor's mask key) is refused by the server.
    const survivorShare = unmask.shares.find((s) => request.survivors.includes(s.of))!;
    const bad = { ...unmask, shares: [{ ...survivorShare, kind: 'mask-key' as const }] };
    await expect(serverReceive(server, bad)).rejects.toThrow(/bad signature|needs its self-mask share/);
    await serverReceive(server, unmask);
    for (const id of ids.slice(1, 4)) {
      const { message } = await clientUnmask(states.get(id), request);
      await serverReceive(server, message);
    }
    const result = await serverCloseUnmask(server);
    expect(result.sum).toEqual(new Uint32Array(16).fill(4));
    expect(result.dropped).toEqual([ids[4]]);
  });

  it('a device whose neighbours did not share keys refuses to send its input', async () => {
    const { identities, server, states } = await started();
    for (const [id, bc] of await serverCloseAdvertise(server)) {
      const { state, message } = await clientShareKeys(states.get(id), bc);
      states.set(id, state);
      await serverReceive(server, message);
    }
    const deliveries = serverCloseShares(server);
    const a = identities[0]!.id;
    const starved = { ...deliveries.get(a)!, ciphertexts: deliveries.get(a)!.ciphertexts.slice(0, 2) };
    await expect(clientMaskedInput(states.get(a), starved, new Uint32Array(16))).rejects.toThrow(SecAggError);
    await expect(clientMaskedInput(states.get(a), starved, new Uint32Array(16))).rejects.toThrow(
      /only 2 neighbours shared keys, fewer than the threshold 3/,
    );
  });
});

describe('graph and parameters', () => {
  it('the neighbour graph is k-regular, symmetric and the same for everyone with the same seed', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `d${i}`);
    const seed = randomBytes(32);
    const g = await neighbourGraph(ids, seed, 6);
    const again = await neighbourGraph([...ids].reverse(), seed, 6);
    for (const id of ids) {
      expect(g.get(id)).toHaveLength(6);
      expect(again.get(id)).toEqual(g.get(id));
      for (const v of g.get(id)!) expect(g.get(v)).toContain(id);
    }
    expect(await neighbourGraph(ids, randomBytes(32), 6)).not.toEqual(g);
  });

  it('derives k and t from n and the expected dropout; t is a majority of k', () => {
    const p = secAggParameters({ devices: 500, dropoutRate: 0.3 });
    expect(p.threshold).toBe(Math.floor(p.neighbours / 2) + 1);
    expect(p.abortProbability).toBeLessThanOrEqual(1e-3);
    expect(p.neighbours).toBeLessThan(499);
    expect(secAggParameters({ devices: 500, dropoutRate: 0 }).neighbours).toBeLessThan(p.neighbours);
    expect(() => secAggParameters({ devices: 1, dropoutRate: 0.1 })).toThrow(RangeError);
  });
});

describe('wire format', () => {
  it('every device message survives encode → decode unchanged; the masked input costs 4·d bytes plus a small header', async () => {
    const identities = await makeIdentities(5);
    const config = roundConfig({ neighbours: 4, threshold: 3, length: 1000 });
    const inputs = randomInputs(
      identities.map((i) => i.id),
      1000,
    );
    const { server } = await runRound(config, identities, inputs);
    const messages = [...Object.values(server.ads), ...Object.values(server.shares), ...Object.values(server.unmasks)];
    for (const m of messages) expect(decodeMessage(encodeMessage(m))).toEqual(m);
    const masked: MaskedInput = {
      stage: 'masked-input',
      roundId: config.roundId,
      from: 'device-0000',
      masked: crypto.getRandomValues(new Uint32Array(1000)),
      signature: randomBytes(64),
    };
    const bytes = encodeMessage(masked);
    expect(decodeMessage(bytes)).toEqual(masked);
    expect(bytes.byteLength - 4000).toBeLessThan(150);
  });

  it('refuses truncated, padded, unknown or malformed messages with a SecAggError', async () => {
    const identities = await makeIdentities(1);
    const config = roundConfig({ neighbours: 4, threshold: 3, length: 4 });
    const { message } = await clientAdvertiseKeys(config, identities[0]!);
    const bytes = encodeMessage(message);
    for (const bad of [
      bytes.subarray(0, bytes.length - 1),
      new Uint8Array([...bytes, 0]),
      new Uint8Array([9, ...bytes.subarray(1)]),
      new Uint8Array(0),
      new Uint8Array([3, 255, 255, 255, 255]),
    ]) {
      expect(() => decodeMessage(bad)).toThrow(SecAggError);
    }
  });
});
