/**
 * The device's privacy budget, per data source: the RDP curve each training run spent (over the accountant's
 * orders; RDP adds up across runs), so ε spent so far is one conversion of the sum — tighter than adding ε's.
 * `charge` is atomic: it reads, checks the budget and writes the new total in one store transaction, and refuses
 * (PrivacyBudgetError, saying what is left) a run that would exceed the budget, leaving the ledger unchanged.
 * Storage is pluggable: a JSON file in Node (file-ledger-store.ts), IndexedDB in browsers (indexeddb-ledger-store.ts).
 */
import { DEFAULT_ORDERS, rdpToEpsilon } from '../../federated/dp/rdp.ts';

export interface LedgerEntry {
  /** Summed RDP per order (DEFAULT_ORDERS). */
  rdp: number[];
  runs: number;
  updatedAt: string;
}

export interface LedgerData {
  version: 1;
  sources: Record<string, LedgerEntry>;
}

export interface LedgerStore {
  /** Runs `update` on the current data and stores its result atomically (or nothing, if it throws). */
  transaction<T>(update: (data: LedgerData) => { data: LedgerData; result: T }): Promise<T>;
  read(): Promise<LedgerData>;
}

export class PrivacyBudgetError extends Error {
  override name = 'PrivacyBudgetError';
}

export const emptyLedger = (): LedgerData => ({ version: 1, sources: {} });

export interface Budget {
  epsilon: number;
  delta: number;
}

export class PrivacyLedger {
  readonly budget: Budget;
  readonly #store: LedgerStore;

  constructor(store: LedgerStore, budget: Budget) {
    if (!(budget.epsilon > 0) || !(budget.delta > 0 && budget.delta < 1))
      throw new RangeError('budget: epsilon must be > 0 and delta in (0, 1)');
    this.#store = store;
    this.budget = budget;
  }

  #epsilon(rdp: readonly number[]): number {
    return rdp.every((r) => r === 0) ? 0 : rdpToEpsilon(DEFAULT_ORDERS, rdp, this.budget.delta).epsilon;
  }

  async spent(source: string): Promise<number> {
    const entry = (await this.#store.read()).sources[source];
    return entry ? this.#epsilon(entry.rdp) : 0;
  }

  async remaining(source: string): Promise<number> {
    return Math.max(0, this.budget.epsilon - (await this.spent(source)));
  }

  /** ε the source would have spent after adding `rdp` (no change stored). */
  async preview(source: string, rdp: readonly number[]): Promise<number> {
    const entry = (await this.#store.read()).sources[source];
    return this.#epsilon(DEFAULT_ORDERS.map((_, i) => (entry?.rdp[i] ?? 0) + rdp[i]!));
  }

  /** Adds a run's RDP curve to `source`, or throws PrivacyBudgetError if that would exceed the budget. */
  charge(source: string, rdp: readonly number[]): Promise<{ spent: number; remaining: number }> {
    if (rdp.length !== DEFAULT_ORDERS.length)
      throw new RangeError(`expected ${DEFAULT_ORDERS.length} RDP values (DEFAULT_ORDERS), got ${rdp.length}`);
    return this.#store.transaction((data) => {
      const before = data.sources[source];
      const total = DEFAULT_ORDERS.map((_, i) => (before?.rdp[i] ?? 0) + rdp[i]!);
      const spent = this.#epsilon(total);
      if (spent > this.budget.epsilon) {
        const left = Math.max(0, this.budget.epsilon - (before ? this.#epsilon(before.rdp) : 0));
        throw new PrivacyBudgetError(
          `privacy budget for '${source}' would be exceeded: this run needs ε to reach ${spent.toFixed(3)} of ${this.budget.epsilon} (δ = ${this.budget.delta}); ${left.toFixed(3)} is left`,
        );
      }
      const next: LedgerData = {
        ...data,
        sources: {
          ...data.sources,
          [source]: { rdp: total, runs: (before?.runs ?? 0) + 1, updatedAt: new Date().toISOString() },
        },
      };
      return { data: next, result: { spent, remaining: this.budget.epsilon - spent } };
    });
  }
}

/** In memory (tests, and devices that must not persist anything). */
export class MemoryLedgerStore implements LedgerStore {
  #data = emptyLedger();
  async read() {
    return structuredClone(this.#data);
  }
  async transaction<T>(update: (data: LedgerData) => { data: LedgerData; result: T }): Promise<T> {
    const { data, result } = update(structuredClone(this.#data));
    this.#data = data;
    return result;
  }
}
