/**
 * The language-model demo's simulated devices, in a Web Worker: real Participants (the SDK's), each with its own
 * signing identity and privacy ledger, fine-tuning fedge-gpt's LoRA adapters on its own text (a held-out Moby-Dick
 * chapter's opening, web/build.ts) with tfjs on WASM, and doing the round's SecAgg+ stages against the edge the page
 * came from. The page hears each device's stage and the round's outcomes.
 */
/// <reference lib="webworker" />
import { Participant, type RoundOutcome } from '../../client-sdk/federated/participant.ts';
import { MemoryLedgerStore, PrivacyLedger } from '../../client-sdk/privacy/ledger.ts';
import { createIdentity } from '../../federated/secagg/client.ts';
import { errorText } from './dom.ts';
import { useTfjsWasm } from './tfjs-wasm.ts';

export interface LmDemoStart {
  url: string;
  task: string;
  token: string;
  epsilon: number;
  /** Each simulated device's texts. */
  texts: string[][];
}

export type LmDemoEvent =
  | { kind: 'stage'; device: number; round: number; stage: string }
  | {
      kind: 'round';
      round: number;
      outcomes: Pick<RoundOutcome, 'status' | 'reason' | 'spent' | 'examples' | 'maskedBytes'>[];
    }
  | { kind: 'finished' }
  | { kind: 'error'; message: string };

const post = (e: LmDemoEvent) => postMessage(e);

async function run(o: LmDemoStart): Promise<void> {
  await useTfjsWasm();
  // The devices share this worker's one tfjs engine: each trains once the one before it has (reached its keys),
  // not interleaved with it.
  const trained = o.texts.map(() => {
    let done!: () => void;
    const p = new Promise<void>((r) => (done = r));
    return { p, done };
  });
  const devices = await Promise.all(
    o.texts.map(async (texts, i) => {
      const participant = new Participant({
        url: o.url,
        task: o.task,
        identity: await createIdentity(`lm-demo-${o.task}-${i + 1}`),
        backend: 'wasm',
        pollMs: 300,
        ledger: new PrivacyLedger(new MemoryLedgerStore(), { epsilon: o.epsilon, delta: 1e-5 }),
        onProgress: ({ round, stage }) => {
          if (stage === 'advertise-keys') trained[i]!.done();
          post({ kind: 'stage', device: i, round, stage });
        },
      });
      await participant.enroll(o.token);
      return { participant, texts };
    }),
  );
  for (;;) {
    // A round waits for the visitor's browser: up to ten minutes for it to check in.
    const outcomes = await Promise.all(
      devices.map(async (d, i) => {
        if (i > 0) await trained[i - 1]!.p;
        const outcome = await d.participant.joinRound({ texts: d.texts }, { waitMs: 600_000 });
        trained[i]!.done();
        return outcome;
      }),
    );
    if (outcomes.every((r) => r.reason === 'the task has finished')) break;
    post({
      kind: 'round',
      round: outcomes[0]!.round,
      outcomes: outcomes.map((r) => ({
        status: r.status,
        reason: r.reason,
        spent: r.spent,
        examples: r.examples,
        maskedBytes: r.maskedBytes,
      })),
    });
  }
  await Promise.all(devices.map((d) => d.participant.release()));
  post({ kind: 'finished' });
}

addEventListener('message', (e: MessageEvent<LmDemoStart>) => {
  run(e.data).catch((err) => post({ kind: 'error', message: errorText(err) }));
});
