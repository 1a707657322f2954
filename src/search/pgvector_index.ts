// A VectorIndex in Postgres with pgvector, over anything that answers query(sql, params): a PGlite
// instance (which bundles pgvector) or a node-postgres Client. One table per index,
//   clipfit_idx_<name> (id text PRIMARY KEY, embedding vector(dim) NOT NULL, metadata jsonb)
// with an HNSW index on vector_cosine_ops, and one row per index in clipfit_indexes (name, dim,
// model). Vectors are L2-normalised before they are stored, as in the folder index; `<=>` is the
// cosine distance, so score = 1 − distance. The client must be a single connection (PGlite or
// pg.Client, not a pg.Pool): session settings (hnsw.ef_search) and BEGIN…COMMIT must reach the
// connection that runs the next statement.

import { ConfigError, UnknownVectorIdError } from '../errors.js';
import type { IndexEntry, IndexItem, Metadata, SearchHit, SearchOptions, StoredItem, VectorIndex } from './index_types.js';
import { prepareItems, prepareQuery } from './prepare.js';

/** The one method this adapter needs; PGlite and pg.Client both have it. */
export interface SqlClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

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
/** pgvector caps hnsw.ef_search at 1000; a search for more neighbours scans exactly. */
const MAX_EF = 1000;
const ROWS_PER_INSERT = 500;

const vectorText = (v: Float32Array): string => `[${Array.from(v).join(',')}]`;

export async function openPgVectorIndex(client: SqlClient, opts: PgVectorIndexOptions = {}): Promise<PgVectorIndex> {
  const name = opts.name ?? 'default';
  if (!NAME_RE.test(name)) throw new ConfigError('name', `index names in Postgres are [a-z0-9_]{1,48}, got ${JSON.stringify(name)}`);
  const table = `clipfit_idx_${name}`;
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS vector');
  } catch (err) {
    const has = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'vector'");
    if (!has.rows.length) throw new ConfigError('index', `the pgvector extension is not installed in this database and could not be created (${(err as Error).message})`);
  }
  await client.query(`CREATE TABLE IF NOT EXISTS ${META} (name text PRIMARY KEY, dim integer NOT NULL, model text NOT NULL, created timestamptz NOT NULL DEFAULT now())`);
  let row = (await client.query(`SELECT dim, model FROM ${META} WHERE name = $1`, [name])).rows[0] as { dim: number; model: string } | undefined;
  if (!row) {
    if (opts.dim === undefined || opts.model === undefined) throw new ConfigError('dim', `no index '${name}' in this database; give dim and model to create one`);
    if (!Number.isInteger(opts.dim) || opts.dim < 1 || opts.dim > 2000) throw new ConfigError('dim', `must be an integer in [1, 2000] (pgvector's HNSW limit), got ${opts.dim}`);
    await createTable(client, table, opts.dim, opts);
    // The meta row last: it marks a complete index.
    await client.query(`INSERT INTO ${META} (name, dim, model) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, [name, opts.dim, opts.model]);
    row = (await client.query(`SELECT dim, model FROM ${META} WHERE name = $1`, [name])).rows[0] as { dim: number; model: string };
  }
  if (opts.dim !== undefined && opts.dim !== row.dim) throw new ConfigError('dim', `index '${name}' holds dimension ${row.dim}, asked for ${opts.dim}`, `table ${table}`);
  return new PgVectorIndex(client, name, row.dim, row.model, opts);
}

async function createTable(client: SqlClient, table: string, dim: number, opts: PgVectorIndexOptions): Promise<void> {
  const m = opts.m ?? 16, efc = opts.efConstruction ?? 64;
  await client.query(`CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, embedding vector(${dim}) NOT NULL, metadata jsonb)`);
  await client.query(`CREATE INDEX IF NOT EXISTS ${table}_hnsw ON ${table} USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efc})`);
}

export class PgVectorIndex implements VectorIndex {
  readonly table: string;
  private closed = false;

  constructor(private readonly client: SqlClient, readonly name: string, readonly dim: number, private currentModel: string, private readonly opts: PgVectorIndexOptions) {
    this.table = `clipfit_idx_${name}`;
  }

  get model(): string {
    return this.currentModel;
  }

  private q(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }> {
    if (this.closed) throw new ConfigError('index', `pgvector index '${this.name}' is closed`);
    return this.client.query(sql, params);
  }

  /** Run `fn` inside BEGIN … COMMIT (ROLLBACK on error). */
  private async transaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.q('BEGIN');
    try {
      const out = await fn();
      await this.q('COMMIT');
      return out;
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
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

  /** One INSERT … ON CONFLICT per 500 rows; batches of more rows run in one transaction. */
  async add(items: readonly IndexItem[]): Promise<void> {
    prepareItems(items, this.dim); // checks every item before anything is sent
    if (items.length <= ROWS_PER_INSERT) return this.insert(this.table, items, this.dim);
    await this.transaction(() => this.insert(this.table, items, this.dim));
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
   * Approximate: ORDER BY embedding <=> $1 through the HNSW index, hnsw.ef_search = max(k, ef).
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
    const ef = Math.min(MAX_EF, Math.max(k, opts.ef ?? 40));
    await this.q(`SELECT set_config('hnsw.ef_search', $1, false)`, [String(ef)]);
    return (await this.q(`SELECT ${cols} FROM ${this.table} ORDER BY embedding <=> $1::vector LIMIT $2`, [q, k])).rows.map(toHit);
  }

  needsRebuild(modelId: string): boolean {
    return modelId !== this.currentModel;
  }

  async clear(modelId?: string): Promise<void> {
    await this.transaction(async () => {
      await this.q(`TRUNCATE ${this.table}`);
      if (modelId !== undefined) await this.q(`UPDATE ${META} SET model = $2 WHERE name = $1`, [this.name, modelId]);
    });
    if (modelId !== undefined) this.currentModel = modelId;
  }

  /** Drop and recreate the table at the new dimension, fill it and relabel, in one transaction. */
  async replaceAll(items: readonly IndexItem[], labels: { dim: number; model: string }): Promise<PgVectorIndex> {
    prepareItems(items, labels.dim);
    await this.transaction(async () => {
      await this.q(`DROP TABLE ${this.table}`);
      await createTable(this.client, this.table, labels.dim, this.opts);
      await this.insert(this.table, items, labels.dim);
      await this.q(`UPDATE ${META} SET dim = $2, model = $3 WHERE name = $1`, [this.name, labels.dim, labels.model]);
    });
    this.closed = true;
    return new PgVectorIndex(this.client, this.name, labels.dim, labels.model, this.opts);
  }

  /** Every statement is committed when it returns: nothing to flush. */
  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opts.onClose?.();
  }
}
