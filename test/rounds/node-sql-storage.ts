/**
 * A Durable Object's SQL storage API (`ctx.storage.sql.exec` and its cursor; `transactionSync`) over Node's own
 * SQLite (node:sqlite), so that code written over TaskStore runs in plain Node: the round engine's tests.
 * Only what TaskStore uses: exec with positional bindings, toArray/one/iteration, BLOBs as ArrayBuffers.
 */
import { DatabaseSync } from 'node:sqlite';

type Row = Record<string, SqlStorageValue>;

export class NodeSqlStorage {
  readonly #db = new DatabaseSync(':memory:');

  exec(query: string, ...bindings: unknown[]) {
    const rows: Row[] =
      bindings.length === 0 && query.trim().replace(/;$/, '').includes(';')
        ? (this.#db.exec(query), [])
        : (this.#db.prepare(query).all(...(bindings as never[])) as Row[]).map((r) =>
            Object.fromEntries(
              Object.entries(r).map(([k, v]) => [
                k,
                v instanceof Uint8Array ? (v.slice() as Uint8Array<ArrayBuffer>).buffer : v,
              ]),
            ),
          );
    return {
      toArray: () => rows,
      one: () => {
        if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}`);
        return rows[0]!;
      },
      [Symbol.iterator]: () => rows[Symbol.iterator](),
    };
  }

  /** One transaction, as `ctx.storage.transactionSync`: rolled back when `fn` throws. */
  transactionSync<T>(fn: () => T): T {
    this.#db.exec('BEGIN');
    try {
      const r = fn();
      this.#db.exec('COMMIT');
      return r;
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }
}
