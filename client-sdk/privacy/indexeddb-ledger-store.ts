/**
 * The privacy ledger in IndexedDB (browsers). `transaction` reads, updates and writes the ledger inside one
 * readwrite IndexedDB transaction, so the check-and-charge is atomic across tabs (IndexedDB serialises overlapping
 * readwrite transactions on a store) and a closed tab or crash leaves the old or the new ledger, never a mix.
 * A stored value that is not a version-1 ledger is an error, not a fresh budget.
 */
import { type LedgerData, type LedgerStore, emptyLedger } from './ledger.ts';

const STORE = 'ledger';
const KEY = 'ledger';

export class LedgerStoreError extends Error {
  override name = 'LedgerStoreError';
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function checked(value: unknown, db: string): LedgerData {
  if (value === undefined) return emptyLedger();
  const data = value as LedgerData;
  if (data?.version !== 1 || typeof data.sources !== 'object' || data.sources === null)
    throw new LedgerStoreError(`privacy ledger in IndexedDB '${db}' is not a version-1 ledger`);
  return data;
}

export class IndexedDbLedgerStore implements LedgerStore {
  readonly database: string;
  #db: Promise<IDBDatabase> | undefined;

  /** One ledger per database name; the default suits one app per origin. */
  constructor(database = 'fedge-privacy-ledger') {
    if (typeof indexedDB === 'undefined')
      throw new LedgerStoreError('IndexedDB is not available here (use FileLedgerStore in Node)');
    this.database = database;
  }

  #open(): Promise<IDBDatabase> {
    this.#db ??= new Promise((resolve, reject) => {
      const r = indexedDB.open(this.database, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new LedgerStoreError(`IndexedDB '${this.database}' is blocked by another tab`));
    });
    return this.#db;
  }

  async read(): Promise<LedgerData> {
    const db = await this.#open();
    return checked(await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(KEY)), this.database);
  }

  async transaction<T>(update: (data: LedgerData) => { data: LedgerData; result: T }): Promise<T> {
    const db = await this.#open();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, 'readwrite', { durability: 'strict' });
      const store = tx.objectStore(STORE);
      let result: T;
      let failure: unknown;
      const get = store.get(KEY);
      get.onsuccess = () => {
        try {
          // update() is synchronous, so the transaction stays active between the read and the write.
          const next = update(checked(get.result, this.database));
          result = next.result;
          store.put(next.data, KEY);
        } catch (e) {
          failure = e;
          tx.abort();
        }
      };
      tx.oncomplete = () => resolve(result);
      tx.onabort = () => reject(failure ?? tx.error ?? new LedgerStoreError('ledger transaction aborted'));
    });
  }

  close(): void {
    void this.#db?.then((db) => db.close());
    this.#db = undefined;
  }
}
