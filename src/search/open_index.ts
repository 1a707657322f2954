// openIndex(spec): one string picks the backend.
//   NAME                      the index at $CLIPFIT_HOME/indexes/NAME (default ~/.cache/clipfit)
//   ./dir, /abs/dir, ~/dir    the index at that path (a path separator, or a leading '.' or '~')
// A NAME or path is an index root (index_root.ts): its vectors live in ROOT/primary, and the handle
// holds ROOT's owner lock, so a running `clipfit serve` on the same index refuses it with its URL.
//   pglite:memory             pgvector in an in-memory PGlite (gone when closed)
//   pglite:DIR                pgvector in a PGlite database stored in DIR
//   postgres://…[#NAME]       a Postgres server with pgvector, through a node-postgres pool; several
//   postgresql://…[#NAME]     processes may share it (server replicas): see pgvector_index.ts
// For the Postgres backends, `opts.name` (or the URL's #NAME) names the index inside the database
// (default 'default').

import os from 'node:os';
import path from 'node:path';
import { storeHome } from '../data/store.js';
import type { StoreOptions } from '../data/store.js';
import { ConfigError } from '../errors.js';
import { openRootIndex } from './index_root.js';
import type { FolderIndexOptions } from './folder_index.js';
import type { VectorIndex } from './index_types.js';
import { Sql } from './pg_sql.js';
import type { SqlPool } from './pg_sql.js';
import { openPgVectorIndex } from './pgvector_index.js';
import type { PgVectorIndexOptions } from './pgvector_index.js';

export interface OpenIndexOptions extends FolderIndexOptions, StoreOptions {
  /** Index name inside a Postgres database (default 'default'). */
  name?: string;
  /** HNSW build parameters for a new pgvector table. */
  pg?: Pick<PgVectorIndexOptions, 'm' | 'efConstruction'>;
  /** Who opens a folder index, as its lock records it (default 'clipfit index'). */
  purpose?: string;
}

export type IndexLocation =
  | { backend: 'folder'; /** The index root (index_root.ts). */ dir: string }
  | { backend: 'pglite'; dataDir: string | null }
  | { backend: 'postgres'; /** Without the #NAME. */ url: string; /** The URL's #NAME, if any. */ name?: string };

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const indexesRoot = (opts: StoreOptions = {}): string => path.join(storeHome(opts), 'indexes');

/** Where `spec` points, without opening anything. */
export function resolveIndexSpec(spec: string, opts: StoreOptions = {}): IndexLocation {
  if (typeof spec !== 'string' || spec === '') throw new ConfigError('index', 'give an index name, a folder, pglite:memory, pglite:DIR or a postgres:// URL');
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const hash = spec.indexOf('#');
    if (hash < 0) return { backend: 'postgres', url: spec };
    const name = spec.slice(hash + 1);
    if (!/^[a-z0-9_]{1,48}$/.test(name)) throw new ConfigError('index', `${redact(spec.slice(0, hash))}#${name}: index names in Postgres are [a-z0-9_]{1,48}`);
    return { backend: 'postgres', url: spec.slice(0, hash), name };
  }
  if (spec.startsWith('pglite:')) {
    const rest = spec.slice('pglite:'.length);
    if (rest === '') throw new ConfigError('index', `${spec}: say pglite:memory or pglite:DIR`);
    return { backend: 'pglite', dataDir: rest === 'memory' ? null : path.resolve(expandHome(rest)) };
  }
  // A bare word is always a name, even if a folder of that name is in the working directory (it may
  // be the very image folder being indexed): say ./word for a folder.
  const isPath = spec.includes('/') || spec.includes(path.sep) || spec.startsWith('.') || spec.startsWith('~') || path.isAbsolute(spec);
  if (isPath) return { backend: 'folder', dir: path.resolve(expandHome(spec)) };
  if (!NAME_RE.test(spec)) throw new ConfigError('index', `${JSON.stringify(spec)} is no index name (letters, digits, '.', '_', '-'), folder or URL`);
  return { backend: 'folder', dir: path.join(indexesRoot(opts), spec) };
}

const expandHome = (p: string): string => (p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p);

/** Open (or, given dim and model, create) the index `spec` points at. */
export async function openIndex(spec: string, opts: OpenIndexOptions = {}): Promise<VectorIndex> {
  const loc = resolveIndexSpec(spec, opts);
  if (loc.backend === 'folder') return openRootIndex(loc.dir, opts.purpose ?? 'clipfit index', opts, spec);
  const pgOpts: PgVectorIndexOptions = { name: opts.name ?? (loc.backend === 'postgres' ? loc.name : undefined), dim: opts.dim, model: opts.model, ...opts.pg };
  if (loc.backend === 'pglite') {
    const { PGlite } = await import('@electric-sql/pglite');
    const { vector } = await import('@electric-sql/pglite/vector');
    const db = loc.dataDir === null ? new PGlite({ extensions: { vector } }) : new PGlite(loc.dataDir, { extensions: { vector } });
    return openOwned(new Sql(db, `pglite:${loc.dataDir ?? 'memory'}`), pgOpts, () => db.close());
  }
  const sql = await openPgDatabase(loc.url);
  return openOwned(sql, pgOpts, () => sql.close());
}

async function openOwned(sql: Sql, opts: PgVectorIndexOptions, close: () => Promise<void>): Promise<VectorIndex> {
  try {
    return await openPgVectorIndex(sql, { ...opts, onClose: close });
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

export interface PgDatabaseOptions {
  /** Most connections this process opens (default 8). */
  maxConnections?: number;
  /** How long a request waits for a connection before IndexUnavailableError (default 10 s). */
  connectTimeoutMs?: number;
}

/**
 * A pool of connections to the Postgres server at `url`, as a Sql. Connections that break are
 * dropped from the pool and new ones made on demand, so a server restart costs only the requests
 * in flight (IndexUnavailableError); the pool never crashes the process on an idle connection's error.
 */
export async function openPgDatabase(url: string, opts: PgDatabaseOptions = {}): Promise<Sql> {
  const pg = (await import('pg')).default;
  const pool = new pg.Pool({ connectionString: url, max: opts.maxConnections ?? 8, connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000 });
  pool.on('error', () => undefined);
  const sql = new Sql(pool as unknown as SqlPool, redact(url));
  // Fail now, with a typed error, if the server cannot be reached at all.
  try {
    await sql.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    // Wrong user or password (class 28), no such database (3D000): the URL is wrong, not the network.
    const code = String((err as { code?: unknown }).code ?? '');
    if (code.startsWith('28') || code === '3D000') throw new ConfigError('index', `${sql.where}: ${(err as Error).message}`);
    throw err;
  }
  return sql;
}

/** The URL without its password, for messages. */
export const redact = (url: string): string => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
