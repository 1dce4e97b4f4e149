/**
 * The device's privacy budget, per data source: the RDP curve each training run spent (over the accountant's
 * orders; RDP adds up across runs), so ε spent so far is one conversion of the sum — tighter than adding ε's.
 * `charge` is atomic: it reads, checks the budget and writes the new total in one store transaction, and refuses
 * (PrivacyBudgetError, saying what is left) a run that would exceed the budget, leaving the ledger unchanged.
 * `reserve` is the same check, held as pending until the caller knows whether the run's result left the device:
 * `commit` makes it spent, `release` gives it back (a federated round that never used this device's update must not
 * cost its budget). A pending reservation counts as spent — also after a crash, until released.
 * Storage is pluggable: a JSON file in Node (file-ledger-store.ts), IndexedDB in browsers (indexeddb-ledger-store.ts).
 */
import { DEFAULT_ORDERS, rdpToEpsilon } from '../../federated/dp/rdp.ts';

export interface LedgerEntry {
  /** Summed RDP per order (DEFAULT_ORDERS). */
  rdp: number[];
  runs: number;
  updatedAt: string;
  /** Reservations not yet committed or released, by id: their RDP counts as spent meanwhile. */
  pending?: Record<string, number[]> | undefined;
}

/** A run's charge held against the budget until its result is known to have left the device, or not. */
export interface Reservation {
  /** ε the source shows spent with this reservation, and what is left. */
  readonly spent: number;
  readonly remaining: number;
  /** The run's result left the device: the reservation becomes spent. Idempotent. */
  commit(): Promise<void>;
  /** The run's result never left the device: the reservation is given back. Idempotent; nothing after commit. */
  release(): Promise<void>;
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

  /** Everything the entry counts as spent: its committed RDP and its pending reservations. */
  #held(entry: LedgerEntry | undefined): number[] {
    const total = DEFAULT_ORDERS.map((_, i) => entry?.rdp[i] ?? 0);
    for (const rdp of Object.values(entry?.pending ?? {})) for (let i = 0; i < total.length; i++) total[i]! += rdp[i]!;
    return total;
  }

  async spent(source: string): Promise<number> {
    const entry = (await this.#store.read()).sources[source];
    return entry ? this.#epsilon(this.#held(entry)) : 0;
  }

  async remaining(source: string): Promise<number> {
    return Math.max(0, this.budget.epsilon - (await this.spent(source)));
  }

  /** ε the source would have spent after adding `rdp` (no change stored). */
  async preview(source: string, rdp: readonly number[]): Promise<number> {
    const held = this.#held((await this.#store.read()).sources[source]);
    return this.#epsilon(DEFAULT_ORDERS.map((_, i) => held[i]! + rdp[i]!));
  }

  /** Adds a run's RDP curve to `source`, or throws PrivacyBudgetError if that would exceed the budget. */
  charge(source: string, rdp: readonly number[]): Promise<{ spent: number; remaining: number }> {
    return this.#add(source, rdp, undefined);
  }

  /**
   * Holds a run's RDP curve against `source`'s budget (PrivacyBudgetError if it would exceed it) until the caller
   * commits or releases it.
   */
  async reserve(source: string, rdp: readonly number[]): Promise<Reservation> {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    const { spent, remaining } = await this.#add(source, rdp, id);
    let settled = false;
    const settle = (keep: boolean) => async () => {
      if (settled) return;
      await this.#store.transaction((data) => {
        const entry = data.sources[source];
        const held = entry?.pending?.[id];
        if (!entry || !held) return { data, result: undefined };
        const { [id]: _, ...pending } = entry.pending!;
        const next: LedgerEntry = {
          rdp: keep ? entry.rdp.map((v, i) => v + held[i]!) : entry.rdp,
          runs: entry.runs + (keep ? 1 : 0),
          updatedAt: new Date().toISOString(),
          ...(Object.keys(pending).length ? { pending } : {}),
        };
        return { data: { ...data, sources: { ...data.sources, [source]: next } }, result: undefined };
      });
      settled = true;
    };
    return { spent, remaining, commit: settle(true), release: settle(false) };
  }

  /** Adds `rdp` to `source` — spent, or pending under `reservation` — within the budget, in one transaction. */
  #add(source: string, rdp: readonly number[], reservation: string | undefined) {
    if (rdp.length !== DEFAULT_ORDERS.length)
      throw new RangeError(`expected ${DEFAULT_ORDERS.length} RDP values (DEFAULT_ORDERS), got ${rdp.length}`);
    return this.#store.transaction((data) => {
      const before = data.sources[source];
      const held = this.#held(before);
      const spent = this.#epsilon(DEFAULT_ORDERS.map((_, i) => held[i]! + rdp[i]!));
      if (spent > this.budget.epsilon) {
        const left = Math.max(0, this.budget.epsilon - (before ? this.#epsilon(held) : 0));
        throw new PrivacyBudgetError(
          `privacy budget for '${source}' would be exceeded: this run needs ε to reach ${spent.toFixed(3)} of ${this.budget.epsilon} (δ = ${this.budget.delta}); ${left.toFixed(3)} is left`,
        );
      }
      const entry: LedgerEntry = reservation
        ? {
            rdp: before?.rdp ?? DEFAULT_ORDERS.map(() => 0),
            runs: before?.runs ?? 0,
            updatedAt: new Date().toISOString(),
            pending: { ...before?.pending, [reservation]: [...rdp] },
          }
        : {
            ...before,
            rdp: DEFAULT_ORDERS.map((_, i) => (before?.rdp[i] ?? 0) + rdp[i]!),
            runs: (before?.runs ?? 0) + 1,
            updatedAt: new Date().toISOString(),
          };
      const next: LedgerData = { ...data, sources: { ...data.sources, [source]: entry } };
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
