/**
 * ModelCatalog: the Durable Object (SQLite) that holds version and alias pointers. One instance ("global")
 * serves the whole deployment, so a version's sha256 and every alias move are strongly consistent and
 * each write is one transaction: an upload either records its version or changes nothing.
 * Blobs live in R2 (blob-store.ts); this object stores only what points at them.
 */
import { DurableObject } from 'cloudflare:workers';
import { LATEST, type ModelSummary, type ProbeVerdict, type TensorMeta, type VersionRecord } from './model-record.ts';
import type { TextGeneration } from '../../federated/oip/model-records.ts';

type Row = Record<string, SqlStorageValue>;

function toRecord(r: Row): VersionRecord {
  return {
    model: String(r.model),
    version: String(r.version),
    sha256: String(r.sha256),
    bytes: Number(r.bytes),
    inputs: JSON.parse(String(r.inputs)) as TensorMeta[],
    outputs: JSON.parse(String(r.outputs)) as TensorMeta[],
    createdAt: String(r.created_at),
    ...(r.probe != null && { probe: JSON.parse(String(r.probe)) as ProbeVerdict }),
    ...(r.text_generation != null && { textGeneration: JSON.parse(String(r.text_generation)) as TextGeneration }),
  };
}

export type PutVersionResult =
  | { status: 'created' | 'unchanged'; record: VersionRecord }
  | { status: 'conflict'; record: VersionRecord };
export type SetAliasResult = { status: 'ok'; record: VersionRecord } | { status: 'no-version' };
export type DeleteVersionResult =
  | { status: 'deleted'; sha256: string; blobStillUsed: boolean }
  | { status: 'not-found' }
  | { status: 'aliased'; aliases: string[] };

/** Whether a new version moves `latest` (putVersion). */
export type LatestPolicy = 'always' | 'never' | { onlyFrom: string[] };

export class ModelCatalog extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS versions (
        model TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
        inputs TEXT NOT NULL, outputs TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (model, version));
      CREATE TABLE IF NOT EXISTS aliases (
        model TEXT NOT NULL, alias TEXT NOT NULL, version TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (model, alias));`);
    // The upload verdict came after the first deployments: added to any table without it (NULL: no verdict recorded).
    const columns = this.#sql
      .exec("SELECT name FROM pragma_table_info('versions')")
      .toArray()
      .map((r) => String(r.name));
    if (!columns.includes('probe')) this.#sql.exec('ALTER TABLE versions ADD COLUMN probe TEXT');
    // So did language models (NULL: the version does not generate).
    if (!columns.includes('text_generation')) this.#sql.exec('ALTER TABLE versions ADD COLUMN text_generation TEXT');
  }

  #version(model: string, version: string): VersionRecord | null {
    const row = this.#sql.exec('SELECT * FROM versions WHERE model = ? AND version = ?', model, version).toArray()[0];
    return row ? toRecord(row) : null;
  }

  /** A version by name, else by alias; `ref` absent means the `latest` alias. */
  resolve(model: string, ref?: string): VersionRecord | null {
    if (ref !== undefined) {
      const direct = this.#version(model, ref);
      if (direct) return direct;
    }
    const alias = this.#sql
      .exec('SELECT version FROM aliases WHERE model = ? AND alias = ?', model, ref ?? LATEST)
      .toArray()[0];
    return alias ? this.#version(model, String(alias.version)) : null;
  }

  /**
   * Records a new immutable version and points `latest` at it: `always`; `never` (a gated task's round waits for its
   * evaluation); or `{onlyFrom}` — only when the model has no `latest` yet or it points at one of those versions (a
   * task moves the latest of the model it created, never a served model's: promoting a task's version there is an
   * explicit alias move). The same bytes again change nothing.
   */
  putVersion(rec: Omit<VersionRecord, 'createdAt'>, policy: LatestPolicy = 'always'): PutVersionResult {
    const existing = this.#version(rec.model, rec.version);
    if (existing) return { status: existing.sha256 === rec.sha256 ? 'unchanged' : 'conflict', record: existing };
    const now = new Date().toISOString();
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec(
        'INSERT INTO versions (model, version, sha256, bytes, inputs, outputs, created_at, probe, text_generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        rec.model,
        rec.version,
        rec.sha256,
        rec.bytes,
        JSON.stringify(rec.inputs),
        JSON.stringify(rec.outputs),
        now,
        rec.probe ? JSON.stringify(rec.probe) : null,
        rec.textGeneration ? JSON.stringify(rec.textGeneration) : null,
      );
      const latest = this.#sql
        .exec('SELECT version FROM aliases WHERE model = ? AND alias = ?', rec.model, LATEST)
        .toArray()[0]?.version;
      const move =
        policy === 'always' ||
        (policy !== 'never' && (latest === undefined || policy.onlyFrom.includes(String(latest))));
      if (move) this.#setAlias(rec.model, LATEST, rec.version, now);
    });
    return { status: 'created', record: { ...rec, createdAt: now } };
  }

  /**
   * Replaces a version's upload verdict (an upload of the same bytes again, with a warm-up that passed); the bytes,
   * tensors and aliases stay as they are. Null when there is no such version.
   */
  setProbe(model: string, version: string, probe: ProbeVerdict): VersionRecord | null {
    this.#sql.exec(
      'UPDATE versions SET probe = ? WHERE model = ? AND version = ?',
      JSON.stringify(probe),
      model,
      version,
    );
    return this.#version(model, version);
  }

  #setAlias(model: string, alias: string, version: string, now: string): void {
    this.#sql.exec(
      'INSERT INTO aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at',
      model,
      alias,
      version,
      now,
    );
  }

  setAlias(model: string, alias: string, version: string): SetAliasResult {
    const record = this.#version(model, version);
    if (!record) return { status: 'no-version' };
    this.#setAlias(model, alias, version, new Date().toISOString());
    return { status: 'ok', record };
  }

  /** Removes an alias (a finished task's base pin); whether it existed. */
  deleteAlias(model: string, alias: string): { deleted: boolean } {
    return {
      deleted:
        this.#sql.exec('DELETE FROM aliases WHERE model = ? AND alias = ? RETURNING alias', model, alias).toArray()
          .length > 0,
    };
  }

  /** Refused while an alias points at the version; reports whether another version still uses the blob. */
  deleteVersion(model: string, version: string): DeleteVersionResult {
    const record = this.#version(model, version);
    if (!record) return { status: 'not-found' };
    const aliases = this.#sql
      .exec('SELECT alias FROM aliases WHERE model = ? AND version = ? ORDER BY alias', model, version)
      .toArray()
      .map((r) => String(r.alias));
    if (aliases.length) return { status: 'aliased', aliases };
    this.#sql.exec('DELETE FROM versions WHERE model = ? AND version = ?', model, version);
    const users = this.#sql.exec('SELECT COUNT(*) AS n FROM versions WHERE sha256 = ?', record.sha256).one().n;
    return { status: 'deleted', sha256: record.sha256, blobStillUsed: Number(users) > 0 };
  }

  listModels(): ModelSummary[] {
    const models = new Map<string, ModelSummary>();
    const get = (name: string) => {
      let m = models.get(name);
      if (!m) models.set(name, (m = { name, versions: [], aliases: {} }));
      return m;
    };
    for (const r of this.#sql.exec('SELECT model, version FROM versions ORDER BY model, created_at, version'))
      get(String(r.model)).versions.push(String(r.version));
    for (const r of this.#sql.exec('SELECT model, alias, version FROM aliases ORDER BY model, alias'))
      get(String(r.model)).aliases[String(r.alias)] = String(r.version);
    return [...models.values()];
  }

  getModel(name: string): ModelSummary | null {
    return this.listModels().find((m) => m.name === name) ?? null;
  }
}
