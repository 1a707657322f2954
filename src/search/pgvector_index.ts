// A VectorIndex in Postgres with pgvector, over anything that answers query(sql, params): a PGlite
// instance (which bundles pgvector) or a node-postgres Client. One table per index,
//   clipfit_idx_<name> (id text PRIMARY KEY, embedding vector(dim) NOT NULL, metadata jsonb)
// with an HNSW index on vector_cosine_ops, and one row per index in clipfit_indexes (name, dim,
// model): its label. Vectors are L2-normalised before they are stored, as in the folder index;
// `<=>` is the cosine distance, so score = 1 − distance. The connection is one (PGlite, pg.Client)
// or a pool (pg.Pool) through Sql (pg_sql.ts), which keeps session settings (hnsw.ef_search) and
// BEGIN…COMMIT on one connection.
// Several processes may share the index (server replicas): creation runs under an advisory lock,
// every add re-reads the label row FOR SHARE inside its transaction (a rebuild that relabels the
// index for another model takes that row FOR UPDATE), and every search reads the label in the
// statement that sets ef, so a handle opened for one model never writes into, or answers from, an
// index another process has since relabelled: IndexMismatchError, and needsRebuild() turns true.

import { ConfigError, IndexMismatchError, UnknownVectorIdError } from '../errors.js';
import type { IndexEntry, IndexItem, Metadata, SearchHit, SearchOptions, SearchSettings, StoredItem, VectorIndex } from './index_types.js';
import { Sql } from './pg_sql.js';
import type { SqlClient, SqlPool } from './pg_sql.js';
import { prepareItems, prepareQuery } from './prepare.js';

export type { SqlClient, SqlPool } from './pg_sql.js';

export interface PgVectorIndexOptions {
  /** Index name, [a-z0-9_]{1,48} (default 'default'); the table is clipfit_idx_<name>. */
  name?: string;
  /** Needed to create the index; checked against an existing one. */
  dim?: number;
  /** Needed to create the index; an existing one keeps its own (see needsRebuild). */
  model?: string;
  /** HNSW build parameters for a new table (pgvector defaults m = 16, ef_construction = 64). */
  m?: number;
  efConstruction?: number;
  /** Called by close(), e.g. to close a PGlite the caller does not keep. */
  onClose?: () => Promise<void>;
}

const META = 'clipfit_indexes';
const NAME_RE = /^[a-z0-9_]{1,48}$/;
/**
 * hnsw.ef_search when the caller names none. pgvector's own default, 40, gave recall@10 0.87 at 100k
 * 512-d vectors (m 16, ef_construction 64; bench:serve:pgvector); 200 gave 0.989 for 2.7 ms more at p50.
 */
export const DEFAULT_PG_EF = 200;

/** pgvector caps hnsw.ef_search at 1000; a search for more neighbours scans exactly. */
export const MAX_PG_EF = 1000;
const MAX_EF = MAX_PG_EF;
const ROWS_PER_INSERT = 500;
/** pg_advisory_xact_lock key of index creation: 'clipfit' as an integer. */
export const CREATE_LOCK = 0x636c6970;

const vectorText = (v: Float32Array): string => `[${Array.from(v).join(',')}]`;

interface Label {
  dim: number;
  model: string;
}

/** The vector extension, created if absent (CREATE EXTENSION needs a superuser or the database owner). */
export async function ensureVectorExtension(sql: Sql): Promise<void> {
  const has = async () => (await sql.query("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).rows.length > 0;
  if (await has()) return;
  try {
    await sql.query('CREATE EXTENSION IF NOT EXISTS vector');
  } catch (err) {
    // Two processes creating it at once: one wins, the other sees a duplicate.
    if (await has().catch(() => false)) return;
    throw new ConfigError(
      'index',
      `the pgvector extension is not installed in ${sql.where} and could not be created (${(err as Error).message}); as a superuser, run CREATE EXTENSION vector in that database (the server needs pgvector 0.5 or later)`,
    );
  }
}

/** A Sql over `db`, unless it is one already. */
export const asSql = (db: SqlClient | SqlPool | Sql, where = 'the database'): Sql => (db instanceof Sql ? db : new Sql(db, where));

export async function openPgVectorIndex(db: SqlClient | SqlPool | Sql, opts: PgVectorIndexOptions = {}): Promise<PgVectorIndex> {
  const sql = asSql(db);
  const name = opts.name ?? 'default';
  if (!NAME_RE.test(name)) throw new ConfigError('name', `index names in Postgres are [a-z0-9_]{1,48}, got ${JSON.stringify(name)}`);
  const table = `clipfit_idx_${name}`;
  await ensureVectorExtension(sql);
  // Everything below commits together or not at all: a refused open leaves the database as it was.
  const row = await sql.transaction(async () => {
    // One creator at a time, in every process: CREATE … IF NOT EXISTS alone races on the catalogs.
    await sql.query('SELECT pg_advisory_xact_lock($1)', [CREATE_LOCK]);
    await sql.query(`CREATE TABLE IF NOT EXISTS ${META} (name text PRIMARY KEY, dim integer NOT NULL, model text NOT NULL, created timestamptz NOT NULL DEFAULT now())`);
    const found = (await sql.query(`SELECT dim, model FROM ${META} WHERE name = $1`, [name])).rows[0] as Label | undefined;
    if (found) {
      if (opts.dim !== undefined && opts.dim !== found.dim)
        throw new IndexMismatchError(name, `dimension ${opts.dim}`, `dimension ${found.dim}`, `table ${table} was made for another model; give another index name, or rebuild it for this model`);
      await checkTable(sql, table, found.dim, true);
      return found;
    }
    if (opts.dim === undefined || opts.model === undefined) throw new ConfigError('dim', `no index '${name}' in ${sql.where}; give dim and model to create one`);
    if (!Number.isInteger(opts.dim) || opts.dim < 1 || opts.dim > 2000) throw new ConfigError('dim', `must be an integer in [1, 2000] (pgvector's HNSW limit), got ${opts.dim}`);
    // A table of that name that clipfit did not label: adopted only if it has the right columns.
    await checkTable(sql, table, opts.dim, false);
    await createTable(sql, table, opts.dim, opts);
    await sql.query(`INSERT INTO ${META} (name, dim, model) VALUES ($1, $2, $3)`, [name, opts.dim, opts.model]);
    return { dim: opts.dim, model: opts.model };
  });
  return new PgVectorIndex(sql, name, row.dim, row.model, opts);
}

async function createTable(sql: Sql, table: string, dim: number, opts: PgVectorIndexOptions): Promise<void> {
  const m = opts.m ?? 16, efc = opts.efConstruction ?? 64;
  await sql.query(`CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, embedding vector(${dim}) NOT NULL, metadata jsonb)`);
  await sql.query(`CREATE INDEX IF NOT EXISTS ${table}_hnsw ON ${table} USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efc})`);
}

/** The table's columns are the ones this adapter writes, at the labelled dimension (a missing table
 * is an error only when `required`). */
async function checkTable(sql: Sql, table: string, dim: number, required: boolean): Promise<void> {
  const cols = (await sql.query(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  )).rows as { name: string; type: string }[];
  const want = { id: 'text', embedding: `vector(${dim})`, metadata: 'jsonb' };
  const got = Object.fromEntries(cols.map((c) => [c.name, c.type]));
  if (!cols.length && !required) return;
  if (!cols.length) throw new IndexMismatchError(table, `a table of vector(${dim})`, 'no table (its label row in clipfit_indexes is left)', `drop that row, or restore the table`);
  const wrong = Object.entries(want).filter(([k, t]) => got[k] !== t);
  if (wrong.length)
    throw new IndexMismatchError(
      table,
      `columns id text, embedding vector(${dim}), metadata jsonb`,
      cols.map((c) => `${c.name} ${c.type}`).join(', '),
      'it was not made by clipfit for this label (another dimension or program); give another index name',
    );
}

export class PgVectorIndex implements VectorIndex {
  readonly table: string;
  private closed = false;

  constructor(private readonly sql: Sql, readonly name: string, readonly dim: number, private currentModel: string, private readonly opts: PgVectorIndexOptions) {
    this.table = `clipfit_idx_${name}`;
  }

  get model(): string {
    return this.currentModel;
  }

  /** Where the index lives, for messages: the database (no password) and the table. */
  get where(): string {
    return `${this.sql.where}, table ${this.table}`;
  }

  private async q(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }> {
    if (this.closed) throw new ConfigError('index', `pgvector index '${this.name}' is closed`);
    return this.sql.query(sql, params);
  }

  /** The label as stored now must be the one this handle was opened for. */
  private checkLabel(row: Label | undefined): void {
    if (row && row.model === this.currentModel && row.dim === this.dim) return;
    const mine = `vectors of ${this.currentModel} (dimension ${this.dim})`;
    if (row) this.currentModel = row.model; // needsRebuild() now tells the truth
    throw new IndexMismatchError(
      this.name,
      mine,
      row ? `vectors of ${row.model} (dimension ${row.dim})` : 'nothing (its label row is gone)',
      'another process relabelled it since this handle opened it (a rebuild for another model); reopen it with that model, or rebuild it again',
    );
  }

  private async insert(table: string, items: readonly IndexItem[], dim: number): Promise<void> {
    const prepared = prepareItems(items, dim);
    for (let i = 0; i < prepared.length; i += ROWS_PER_INSERT) {
      const chunk = prepared.slice(i, i + ROWS_PER_INSERT);
      const params: unknown[] = [];
      const values = chunk.map((it, j) => {
        params.push(it.id, vectorText(it.vector), it.metadata === undefined ? null : JSON.stringify(it.metadata));
        return `($${3 * j + 1}, $${3 * j + 2}::vector, $${3 * j + 3}::jsonb)`;
      });
      await this.q(`INSERT INTO ${table} (id, embedding, metadata) VALUES ${values.join(', ')} ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata`, params);
    }
  }

  /** One transaction: the label checked, then one INSERT … ON CONFLICT per 500 rows. */
  async add(items: readonly IndexItem[]): Promise<void> {
    prepareItems(items, this.dim); // checks every item before anything is sent
    await this.sql.transaction(async () => {
      this.checkLabel((await this.q(`SELECT dim, model FROM ${META} WHERE name = $1 FOR SHARE`, [this.name])).rows[0] as Label | undefined);
      await this.insert(this.table, items, this.dim);
    });
  }

  async remove(id: string): Promise<void> {
    const r = await this.q(`DELETE FROM ${this.table} WHERE id = $1 RETURNING id`, [id]);
    if (!r.rows.length) throw new UnknownVectorIdError(id, `table ${this.table}`);
  }

  async get(id: string): Promise<StoredItem | undefined> {
    const r = (await this.q(`SELECT embedding::text AS v, metadata FROM ${this.table} WHERE id = $1`, [id])).rows[0] as { v: string; metadata: Metadata | null } | undefined;
    if (!r) return undefined;
    return { id, vector: Float32Array.from(JSON.parse(r.v) as number[]), metadata: r.metadata ?? undefined };
  }

  async size(): Promise<number> {
    const r = (await this.q(`SELECT count(*)::integer AS n FROM ${this.table}`)).rows[0] as { n: number };
    return r.n;
  }

  async list(): Promise<IndexEntry[]> {
    const rows = (await this.q(`SELECT id, metadata FROM ${this.table} ORDER BY id`)).rows as { id: string; metadata: Metadata | null }[];
    return rows.map((r) => ({ id: r.id, metadata: r.metadata ?? undefined }));
  }

  /**
   * Approximate: ORDER BY embedding <=> $1 through the HNSW index, hnsw.ef_search = max(k, ef ?? 200).
   * Exact (opts.exact, k > 1000, or a filter): ORDER BY (embedding <=> $1) + 0, an expression no
   * index serves, so Postgres scans and sorts; with a filter, page by page until k hits are kept.
   */
  async search(query: Float32Array, k: number, opts: SearchOptions = {}): Promise<SearchHit[]> {
    const q = vectorText(prepareQuery(query, k, this.dim));
    if (k === 0) return [];
    const cols = `id, 1 - (embedding <=> $1::vector) AS score, metadata`;
    const toHit = (r: unknown): SearchHit => {
      const row = r as { id: string; score: number; metadata: Metadata | null };
      return { id: row.id, score: Number(row.score), metadata: row.metadata ?? undefined };
    };
    const ef = Math.min(MAX_EF, Math.max(k, opts.ef ?? DEFAULT_PG_EF));
    return this.sql.session(async () => {
      // The label and ef in one round trip; ef is a session setting of the connection held here.
      this.checkLabel((await this.q(`SELECT set_config('hnsw.ef_search', $2, false) AS ef, dim, model FROM ${META} WHERE name = $1`, [this.name, String(ef)])).rows[0] as Label | undefined);
      if (opts.filter) {
        const out: SearchHit[] = [];
        const page = Math.max(4 * k, 256);
        for (let offset = 0; ; offset += page) {
          const rows = (await this.q(`SELECT ${cols} FROM ${this.table} ORDER BY (embedding <=> $1::vector) + 0, id LIMIT $2 OFFSET $3`, [q, page, offset])).rows;
          for (const r of rows) {
            const h = toHit(r);
            if (opts.filter(h.id, h.metadata)) out.push(h);
            if (out.length === k) return out;
          }
          if (rows.length < page) return out;
        }
      }
      if (opts.exact || k > MAX_EF) return (await this.q(`SELECT ${cols} FROM ${this.table} ORDER BY (embedding <=> $1::vector) + 0, id LIMIT $2`, [q, k])).rows.map(toHit);
      return (await this.q(`SELECT ${cols} FROM ${this.table} ORDER BY embedding <=> $1::vector LIMIT $2`, [q, k])).rows.map(toHit);
    });
  }

  needsRebuild(modelId: string): boolean {
    return modelId !== this.currentModel;
  }

  searchSettings(): SearchSettings {
    return { backend: 'pgvector', approximate: true, efSearch: DEFAULT_PG_EF };
  }

  async clear(modelId?: string): Promise<void> {
    await this.sql.transaction(async () => {
      await this.q(`SELECT 1 FROM ${META} WHERE name = $1 FOR UPDATE`, [this.name]);
      await this.q(`TRUNCATE ${this.table}`);
      if (modelId !== undefined) await this.q(`UPDATE ${META} SET model = $2 WHERE name = $1`, [this.name, modelId]);
    });
    if (modelId !== undefined) this.currentModel = modelId;
  }

  /** Drop and recreate the table at the new dimension, fill it and relabel, in one transaction. */
  async replaceAll(items: readonly IndexItem[], labels: { dim: number; model: string }): Promise<PgVectorIndex> {
    prepareItems(items, labels.dim);
    await this.sql.transaction(async () => {
      await this.q(`SELECT 1 FROM ${META} WHERE name = $1 FOR UPDATE`, [this.name]);
      await this.q(`DROP TABLE ${this.table}`);
      await createTable(this.sql, this.table, labels.dim, this.opts);
      await this.insert(this.table, items, labels.dim);
      await this.q(`UPDATE ${META} SET dim = $2, model = $3 WHERE name = $1`, [this.name, labels.dim, labels.model]);
    });
    this.closed = true;
    return new PgVectorIndex(this.sql, this.name, labels.dim, labels.model, this.opts);
  }

  /** Every statement is committed when it returns: nothing to flush. */
  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opts.onClose?.();
  }
}
