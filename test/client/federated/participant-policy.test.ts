/**
 * The stock Participant refuses, before it downloads, trains or sends anything, a round whose announced
 * parameters would let the server learn its input (issue 14, point 8): t ≤ k/2, fewer than 3 contributors, or
 * distributed-DP noise sized for more devices than the round accepts. The server here is a stub that lies.
 */
import { describe, expect, it } from 'vitest';
import { Participant } from '../../../client-sdk/federated/participant.ts';
import { createIdentity } from '../../../federated/secagg/client.ts';
import { UnsafeRoundError } from '../../../federated/secagg/round-policy.ts';
import { ddgaussParameters } from '../../../federated/dp/distributed-dp.ts';
import { tiny } from '../../fixtures/tiny-spec.ts';
import { toBase64 } from '../../../federated/bytes.ts';

const spec = tiny;

function lyingServer(over: Record<string, unknown>) {
  const asked: string[] = [];
  const fetchStub = (async (input: RequestInfo | URL, init?: RequestInit) => {
    asked.push(`${init?.method ?? 'GET'} ${String(input)}`);
    const info = {
      task: 't',
      round: 1,
      roundId: 't/1/x',
      stage: 'advertise-keys',
      open: true,
      graphSeed: toBase64(new Uint8Array(32)),
      neighbours: 4,
      threshold: 3,
      minDevices: 3,
      length: 16,
      fixedPoint: { clip: 1, scale: 1e6, maxExamples: 10 },
      weightsVersion: 0,
      training: { epochs: 1, batchSize: 10, learningRate: 0.1, optimizer: 'sgd' },
      spec,
      deadline: new Date().toISOString(),
      ...over,
    };
    return new Response(JSON.stringify(info), { headers: { 'Content-Type': 'application/json' } });
  }) as typeof fetch;
  return { fetchStub, asked };
}

describe('Participant round policy', () => {
  it.each([
    ['t ≤ k/2', { neighbours: 4, threshold: 2 }, /at most half of 4 neighbours/],
    ['fewer than 3 contributors', { minDevices: 2 }, /at least 3 contributors/],
    [
      'DDGauss noise sized for more devices than the round accepts',
      { distributedDp: ddgaussParameters({ clip: 1, centralNoiseStd: 1, devices: 10, dimension: 15 }) },
      /sized for 10 devices but a round may publish with 3/,
    ],
    [
      'DDGauss parameters with a smaller local noise than they derive',
      {
        distributedDp: {
          ...ddgaussParameters({ clip: 1, centralNoiseStd: 1, devices: 3, dimension: 15 }),
          localNoiseStd: 1.5,
        },
      },
      /not the ones derived/,
    ],
  ])('%s: UnsafeRoundError, and nothing but the round info was asked for', async (_what, over, pattern) => {
    const { fetchStub, asked } = lyingServer(over);
    const p = new Participant({
      url: 'http://stub',
      task: 't',
      identity: await createIdentity('d'),
      backend: 'cpu',
      fetch: fetchStub,
    });
    const err = await p.joinRound({ x: new Float32Array(40), y: Array(10).fill(0) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeRoundError);
    expect((err as Error).message).toMatch(pattern);
    expect(asked).toEqual(['GET http://stub/v1/tasks/t/round']);
  });
});
