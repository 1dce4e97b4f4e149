/**
 * The privacy ledger in a JSON file (Node). A write goes to a temporary file that is fsync'ed and renamed over the
 * ledger, so a crash leaves the old or the new ledger, never half of one; transactions in this process are
 * serialised. A corrupt ledger file is an error, not an empty budget.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { type LedgerData, type LedgerStore, emptyLedger } from './ledger.ts';

export class FileLedgerStore implements LedgerStore {
  readonly path: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  async read(): Promise<LedgerData> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyLedger();
      throw e;
    }
    const data = JSON.parse(text) as LedgerData;
    if (data?.version !== 1 || typeof data.sources !== 'object')
      throw new Error(`privacy ledger ${this.path} is not a version-1 ledger`);
    return data;
  }

  transaction<T>(update: (data: LedgerData) => { data: LedgerData; result: T }): Promise<T> {
    const run = this.#queue.then(async () => {
      const { data, result } = update(await this.read());
      const tmp = `${this.path}.${process.pid}.tmp`;
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(JSON.stringify(data));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.path);
      return result;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
