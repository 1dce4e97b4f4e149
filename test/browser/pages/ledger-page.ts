/** Page for ledger.test.ts: the SDK's IndexedDB privacy ledger, driven from the test through `window.ledger`. */
import { IndexedDbLedgerStore, PrivacyLedger } from '../../../client-sdk/index.ts';
import { DEFAULT_ORDERS, computeRdp } from '../../../federated/dp/rdp.ts';

const run = () => computeRdp(0.01, 1.1, 500, DEFAULT_ORDERS);
const ledgerFor = (epsilon: number) =>
  new PrivacyLedger(new IndexedDbLedgerStore('test-ledger'), { epsilon, delta: 1e-5 });

const api = {
  async charge(epsilon: number, source: string) {
    try {
      return { ok: true as const, ...(await ledgerFor(epsilon).charge(source, run())) };
    } catch (e) {
      return { ok: false as const, name: (e as Error).name, message: (e as Error).message };
    }
  },
  spent: (source: string) => ledgerFor(10).spent(source),
  /** Writes a value that is not a ledger straight into the store, as a bug or another app might. */
  corrupt: () =>
    new Promise<void>((resolve, reject) => {
      const r = indexedDB.open('test-ledger', 1);
      r.onsuccess = () => {
        const tx = r.result.transaction('ledger', 'readwrite');
        tx.objectStore('ledger').put({ version: 7 }, 'ledger');
        tx.oncomplete = () => (r.result.close(), resolve());
        tx.onerror = () => reject(tx.error);
      };
    }),
};
(globalThis as unknown as { ledger: typeof api }).ledger = api;
document.title = 'ready';
