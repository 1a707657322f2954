// openIndex(spec): one string picks the backend.
//   NAME                      the index at $CLIPFIT_HOME/indexes/NAME (default ~/.cache/clipfit)
//   ./dir, /abs/dir, ~/dir    the index at that path (a path separator, or a leading '.' or '~')
// A NAME or path is an index root (index_root.ts): its vectors live in ROOT/primary, and the handle
// holds ROOT's owner lock, so a running `clipfit serve` on the same index refuses it with its URL.
//   pglite:memory             pgvector in an in-memory PGlite (gone when closed)
//   pglite:DIR                pgvector in a PGlite database stored in DIR
//   postgres://… postgresql://…  a Postgres server with pgvector, through node-postgres: `pg` is
//                             not a clipfit dependency; install it next to clipfit to use this
// For the Postgres backends, `opts.name` names the index inside the database (default 'default').

import os from 'node:os';
import path from 'node:path';
import { storeHome } from '../data/store.js';
import type { StoreOptions } from '../data/store.js';
import { ConfigError } from '../errors.js';
import { openRootIndex } from './index_root.js';
import type { FolderIndexOptions } from './folder_index.js';
import type { VectorIndex } from './index_types.js';
import { openPgVectorIndex } from './pgvector_index.js';
import type { PgVectorIndexOptions, SqlClient } from './pgvector_index.js';

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
  | { backend: 'postgres'; url: string };

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const indexesRoot = (opts: StoreOptions = {}): string => path.join(storeHome(opts), 'indexes');

/** Where `spec` points, without opening anything. */
export function resolveIndexSpec(spec: string, opts: StoreOptions = {}): IndexLocation {
  if (typeof spec !== 'string' || spec === '') throw new ConfigError('index', 'give an index name, a folder, pglite:memory, pglite:DIR or a postgres:// URL');
  if (/^postgres(ql)?:\/\//.test(spec)) return { backend: 'postgres', url: spec };
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
  const pgOpts: PgVectorIndexOptions = { name: opts.name, dim: opts.dim, model: opts.model, ...opts.pg };
  if (loc.backend === 'pglite') {
    const { PGlite } = await import('@electric-sql/pglite');
    const { vector } = await import('@electric-sql/pglite/vector');
    const db = loc.dataDir === null ? new PGlite({ extensions: { vector } }) : new PGlite(loc.dataDir, { extensions: { vector } });
    return openOwned(db, pgOpts, () => db.close());
  }
  const client = await connectPg(loc.url);
  return openOwned(client, pgOpts, () => client.end());
}

async function openOwned(client: SqlClient, opts: PgVectorIndexOptions, close: () => Promise<void>): Promise<VectorIndex> {
  try {
    return await openPgVectorIndex(client, { ...opts, onClose: close });
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

interface PgClient extends SqlClient {
  connect(): Promise<void>;
  end(): Promise<void>;
}

/** A connected pg.Client; node-postgres is loaded only here, and only if it is installed. */
async function connectPg(url: string): Promise<PgClient> {
  const moduleName = 'pg';
  let pg: { default?: { Client: new (o: { connectionString: string }) => PgClient }; Client?: new (o: { connectionString: string }) => PgClient };
  try {
    pg = (await import(moduleName)) as typeof pg;
  } catch {
    throw new ConfigError('index', `${redact(url)}: Postgres indexes go through node-postgres, which is not installed; run: npm install pg`);
  }
  const Client = pg.Client ?? pg.default?.Client;
  if (!Client) throw new ConfigError('index', "the installed 'pg' package has no Client export");
  const client = new Client({ connectionString: url });
  await client.connect();
  return client;
}

/** The URL without its password, for messages. */
const redact = (url: string): string => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
