/**
 * The SQLite storage of one FederatedTask: schema and typed reads/writes, nothing else (the object decides when).
 *   meta          settings and the round pointer (round, stage, deadline, weights version); a sharded round's
 *                 assignment and shard reports (coordinator), or the shard this object aggregates (aggregator)
 *   blobs         the global weights, the optimizer state and the round's running masked sum, each in ≤ 1 MiB rows
 *   devices       enrolled devices and their Ed25519 identity keys
 *   addresses     which client address (a salted digest) each device enrolled from, for the per-address cap
 *   messages      the round's advertise/share/unmask messages and stage closes, in order — replayed after a restart
 *   contributions who is in the running sum (a masked input is added exactly once, a byte-identical retry is a no-op)
 *   rounds        one record per round for the status page
 *   scratch       masked inputs streaming in, chunk by chunk, until their sender is authenticated (then added to
 *                 the sum and deleted; emptied when the object starts, since a request does not outlive it)
 * Callers group writes in `transactionSync`, so a restart sees either a message and its effects or neither.
 */
import { concat, f32 } from '../../federated/bytes.ts';
import type { RoundRecord, TaskSettings, TaskStage } from '../../federated/aggregation/task-protocol.ts';

const CHUNK_BYTES = 1 << 20; // Durable Object SQLite rows hold ≤ 2 MB

export interface RoundPointer {
  round: number;
  roundId: string;
  graphSeed: string;
  stage: TaskStage;
  /** When the stage opened, and when it closes unless everyone answers first. */
  opened: number;
  deadline: number;
  weightsVersion: number;
  /** Cohort sampling: the round's seed (base64), secret until check-in closes; only its SHA-256 is shown before. */
  cohortSeed?: string;
  /** Publishing the finished round failed this many times; the next try is not before `retryAt`. */
  publishFailures?: number;
  retryAt?: number;
}

export class TaskStore {
  readonly #sql: SqlStorage;
  /** Called when the pointer is written (the object wakes long polls when the round or stage moved). */
  onPointer: (p: RoundPointer) => void = () => undefined;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.reset();
  }

  /** Creates the schema (again, after the object's storage was deleted) and empties scratch. */
  reset(): void {
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS blobs (name TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (name, idx));
      CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, identity_key BLOB NOT NULL, enrolled_at TEXT NOT NULL, epsilon REAL NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS addresses (device TEXT PRIMARY KEY, address TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS addresses_by_address ON addresses (address);
      CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, kind TEXT NOT NULL, device TEXT, bytes BLOB);
      CREATE TABLE IF NOT EXISTS contributions (round INTEGER NOT NULL, device TEXT NOT NULL, digest TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (round, device));
      CREATE TABLE IF NOT EXISTS rounds (round INTEGER PRIMARY KEY, record TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS scratch (id TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (id, idx));
      DELETE FROM scratch;
    `);
  }

  meta<T>(key: string): T | undefined {
    const row = this.#sql.exec('SELECT value FROM meta WHERE key = ?', key).toArray()[0];
    return row ? (JSON.parse(String(row.value)) as T) : undefined;
  }
  deleteMeta(key: string): void {
    this.#sql.exec('DELETE FROM meta WHERE key = ?', key);
  }
  setMeta(key: string, value: unknown): void {
    this.#sql.exec(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      key,
      JSON.stringify(value),
    );
  }
  settings(): TaskSettings | undefined {
    return this.meta<TaskSettings>('settings');
  }
  pointer(): RoundPointer {
    return this.meta<RoundPointer>('pointer')!;
  }
  setPointer(p: RoundPointer): void {
    this.setMeta('pointer', p);
    this.onPointer(p);
  }

  writeBlob(name: string, bytes: Uint8Array): void {
    this.#sql.exec('DELETE FROM blobs WHERE name = ?', name);
    for (let i = 0, idx = 0; i < bytes.byteLength || idx === 0; i += CHUNK_BYTES, idx++)
      this.#sql.exec(
        'INSERT INTO blobs (name, idx, data) VALUES (?, ?, ?)',
        name,
        idx,
        bytes.subarray(i, i + CHUNK_BYTES),
      );
  }
  deleteBlob(name: string): void {
    this.#sql.exec('DELETE FROM blobs WHERE name = ?', name);
  }
  /** Deletes every blob whose name starts with `prefix`. */
  deleteBlobs(prefix: string): void {
    this.#sql.exec('DELETE FROM blobs WHERE substr(name, 1, ?) = ?', prefix.length, prefix);
  }
  readBlob(name: string): Uint8Array | undefined {
    const rows = this.#sql.exec('SELECT data FROM blobs WHERE name = ? ORDER BY idx', name).toArray();
    if (!rows.length) return undefined;
    // Rows are ≤ CHUNK_BYTES, so even a large blob is few enough parts to spread.
    return concat(...rows.map((r) => new Uint8Array(r.data as ArrayBuffer)));
  }
  floats(name: string): Float32Array | undefined {
    const b = this.readBlob(name);
    return b ? f32(b, `blob ${name}`) : undefined;
  }

  record(round: number): RoundRecord | undefined {
    const row = this.#sql.exec('SELECT record FROM rounds WHERE round = ?', round).toArray()[0];
    return row ? (JSON.parse(String(row.record)) as RoundRecord) : undefined;
  }
  setRecord(r: RoundRecord): void {
    this.#sql.exec(
      'INSERT INTO rounds (round, record) VALUES (?, ?) ON CONFLICT (round) DO UPDATE SET record = excluded.record',
      r.round,
      JSON.stringify(r),
    );
  }
  history(): RoundRecord[] {
    return this.#sql
      .exec('SELECT record FROM rounds ORDER BY round')
      .toArray()
      .map((r) => JSON.parse(String(r.record)) as RoundRecord);
  }
  publishedRounds(): number {
    return Number(
      this.#sql.exec("SELECT COUNT(*) AS n FROM rounds WHERE json_extract(record, '$.status') = 'published'").one().n,
    );
  }

  devices(): Record<string, Uint8Array> {
    return Object.fromEntries(
      this.#sql
        .exec('SELECT id, identity_key FROM devices')
        .toArray()
        .map((r) => [String(r.id), new Uint8Array(r.identity_key as ArrayBuffer)]),
    );
  }
  identityKey(device: string): Uint8Array | undefined {
    const row = this.#sql.exec('SELECT identity_key FROM devices WHERE id = ?', device).toArray()[0];
    return row ? new Uint8Array(row.identity_key as ArrayBuffer) : undefined;
  }
  addDevice(device: string, identityKey: Uint8Array): void {
    this.#sql.exec(
      'INSERT INTO devices (id, identity_key, enrolled_at) VALUES (?, ?, ?)',
      device,
      identityKey,
      new Date().toISOString(),
    );
  }
  /** Records the address `device` enrolled from (a digest: the task never holds addresses themselves). */
  addAddress(device: string, address: string): void {
    this.#sql.exec('INSERT OR REPLACE INTO addresses (device, address) VALUES (?, ?)', device, address);
  }
  /** Devices enrolled from `address`. */
  addressCount(address: string): number {
    return Number(this.#sql.exec('SELECT COUNT(*) AS n FROM addresses WHERE address = ?', address).one().n);
  }
  /** Forgets an enrolled device: its key, address and reported ε (its messages are refused from then on). */
  removeDevice(device: string): boolean {
    const had = this.identityKey(device) !== undefined;
    this.#sql.exec('DELETE FROM devices WHERE id = ?', device);
    this.#sql.exec('DELETE FROM addresses WHERE device = ?', device);
    return had;
  }
  deviceCount(): number {
    return Number(this.#sql.exec('SELECT COUNT(*) AS n FROM devices').one().n);
  }
  maxEpsilon(): number {
    return Number(this.#sql.exec('SELECT MAX(epsilon) AS e FROM devices').one().e ?? 0);
  }
  /** Each device's reported ε (a shard's aggregator hands them to the task's coordinator). */
  epsilons(): [string, number][] {
    return this.#sql
      .exec('SELECT id, epsilon FROM devices WHERE epsilon > 0')
      .toArray()
      .map((r) => [String(r.id), Number(r.epsilon)]);
  }
  reportEpsilon(device: string, epsilon: number): void {
    this.#sql.exec('UPDATE devices SET epsilon = MAX(epsilon, ?) WHERE id = ?', epsilon, device);
  }

  /** The round's stored messages and stage closes, in arrival order (replayed after a restart). */
  messages(round: number): { kind: string; bytes: Uint8Array | null }[] {
    return this.#sql
      .exec('SELECT kind, bytes FROM messages WHERE round = ? ORDER BY seq', round)
      .toArray()
      .map((r) => ({ kind: String(r.kind), bytes: r.bytes ? new Uint8Array(r.bytes as ArrayBuffer) : null }));
  }
  message(round: number, kind: string, device: string): Uint8Array | undefined {
    const row = this.#sql
      .exec('SELECT bytes FROM messages WHERE round = ? AND kind = ? AND device = ?', round, kind, device)
      .toArray()[0];
    return row ? new Uint8Array(row.bytes as ArrayBuffer) : undefined;
  }
  /** Senders of the round's `kind` messages, in arrival order. */
  senders(round: number, kind: string): string[] {
    return this.#sql
      .exec('SELECT device FROM messages WHERE round = ? AND kind = ? ORDER BY seq', round, kind)
      .toArray()
      .map((r) => String(r.device));
  }
  countMessages(round: number, kind: string): number {
    return Number(
      this.#sql.exec('SELECT COUNT(*) AS n FROM messages WHERE round = ? AND kind = ?', round, kind).one().n,
    );
  }
  addMessage(round: number, kind: string, device?: string, bytes?: Uint8Array): void {
    if (device === undefined) this.#sql.exec('INSERT INTO messages (round, kind) VALUES (?, ?)', round, kind);
    else
      this.#sql.exec(
        'INSERT INTO messages (round, kind, device, bytes) VALUES (?, ?, ?, ?)',
        round,
        kind,
        device,
        bytes!,
      );
  }
  clearMessages(): void {
    this.#sql.exec('DELETE FROM messages');
  }

  contributors(round: number): string[] {
    return this.#sql
      .exec('SELECT device FROM contributions WHERE round = ? ORDER BY seq', round)
      .toArray()
      .map((r) => String(r.device));
  }
  contribution(round: number, device: string): string | undefined {
    const row = this.#sql
      .exec('SELECT digest FROM contributions WHERE round = ? AND device = ?', round, device)
      .toArray()[0];
    return row ? String(row.digest) : undefined;
  }
  addContribution(round: number, device: string, digest: string): void {
    const seq = Number(this.#sql.exec('SELECT COUNT(*) AS n FROM contributions WHERE round = ?', round).one().n);
    this.#sql.exec(
      'INSERT INTO contributions (round, device, digest, seq) VALUES (?, ?, ?, ?)',
      round,
      device,
      digest,
      seq,
    );
  }

  /** One chunk of a masked input streaming in (`id` names the request). */
  addScratch(id: string, idx: number, data: Uint8Array): void {
    this.#sql.exec('INSERT INTO scratch (id, idx, data) VALUES (?, ?, ?)', id, idx, data);
  }
  /** The request's chunks, in order, one at a time (never all in memory). */
  *scratch(id: string): Generator<Uint8Array> {
    for (const r of this.#sql.exec('SELECT data FROM scratch WHERE id = ? ORDER BY idx', id))
      yield new Uint8Array(r.data as ArrayBuffer);
  }
  deleteScratch(id: string): void {
    this.#sql.exec('DELETE FROM scratch WHERE id = ?', id);
  }
}
