/**
 * The demo federation's simulated devices, in a Web Worker so the page stays responsive: real Participants (the
 * SDK's), each with its own signing identity, privacy ledger and share of MNIST training digits, doing real SecAgg+
 * rounds against the edge the page came from, with tfjs on its CPU backend (a worker has no WebGL canvas, and the
 * model is small). The page hears each device's stage and each round's outcomes.
 */
/// <reference lib="webworker" />
import { Participant, type RoundOutcome } from '../../client-sdk/federated/participant.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../../client-sdk/privacy/ledger.ts';
import { createIdentity } from '../../federated/secagg/client.ts';
import { errorText } from './dom.ts';

export interface DemoStart {
  url: string;
  task: string;
  token: string;
  devices: number;
  epsilon: number;
  /** Training digits, 784 bytes each (0–255), and their labels; split evenly over the devices. */
  digits: ArrayBuffer;
  labels: number[];
}

export type DemoEvent =
  | { kind: 'stage'; device: number; round: number; stage: string }
  | { kind: 'round'; round: number; outcomes: Pick<RoundOutcome, 'status' | 'reason' | 'spent'>[] }
  | { kind: 'finished' }
  | { kind: 'error'; message: string };

const post = (e: DemoEvent) => postMessage(e);

async function run(o: DemoStart): Promise<void> {
  const pixels = new Uint8Array(o.digits);
  const per = Math.floor(o.labels.length / o.devices);
  const devices = await Promise.all(
    Array.from({ length: o.devices }, async (_, i) => {
      const participant = new Participant({
        url: o.url,
        task: o.task,
        identity: await createIdentity(`demo-${o.task}-${i + 1}`),
        backend: 'cpu',
        pollMs: 200,
        ledger: new PrivacyLedger(new MemoryLedgerStore(), { epsilon: o.epsilon, delta: 1e-5 }),
        onProgress: ({ round, stage }) => post({ kind: 'stage', device: i, round, stage }),
      });
      await participant.enroll(o.token);
      const x = Float32Array.from(pixels.subarray(i * per * 784, (i + 1) * per * 784), (v) => v / 255);
      return { participant, data: { x, y: o.labels.slice(i * per, (i + 1) * per) } };
    }),
  );
  for (;;) {
    const outcomes = await Promise.all(devices.map((d) => d.participant.joinRound(d.data)));
    if (outcomes.every((r) => r.reason === 'the task has finished')) break;
    post({
      kind: 'round',
      round: outcomes[0]!.round,
      outcomes: outcomes.map((r) => ({ status: r.status, reason: r.reason, spent: r.spent })),
    });
  }
  await Promise.all(devices.map((d) => d.participant.release()));
  post({ kind: 'finished' });
}

addEventListener('message', (e: MessageEvent<DemoStart>) => {
  run(e.data).catch((err) => post({ kind: 'error', message: errorText(err) }));
});
