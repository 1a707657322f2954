// PgVectorIndex on pgvector, the same SQL on two engines: PGlite in process, and a real PostgreSQL 15
// server with pgvector built from source (test/pg_server.ts) through node-postgres. The same contract
// as the folder index — exact and HNSW search against a float64 reference, upsert, remove, typed
// errors, needsRebuild, clear(model), replaceAll — and openIndex's pglite:/postgres:// specs.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import pg from 'pg';
import { ConfigError, IndexMismatchError, UnknownVectorIdError, VectorDimensionError } from '../src/errors.js';
import type { IndexItem } from '../src/search/index_types.js';
import { openIndex } from '../src/search/open_index.js';
import { openPgVectorIndex } from '../src/search/pgvector_index.js';
import type { PgVectorIndex, SqlClient } from '../src/search/pgvector_index.js';
import { seededRandom } from '../src/util/random.js';
import { pgSkipReason, startPgServer } from './pg_server.js';
import type { PgServer } from './pg_server.js';

const rng = seededRandom;
const randVec = (r: () => number, d: number) => Float32Array.from({ length: d }, () => r() * 2 - 1);
const items = (count: number, d: number, seed: number): IndexItem[] => {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => ({ id: `v${i}`, vector: randVec(r, d), metadata: { i, tag: i % 3 === 0 ? 'three' : 'other' } }));
};
function reference(all: readonly IndexItem[], q: Float32Array, k: number, keep: (it: IndexItem) => boolean = () => true): { id: string; score: number }[] {
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return all
    .filter(keep)
    .map((it) => ({ id: it.id, score: it.vector.reduce((s, x, j) => s + x * q[j]!, 0) / (norm(it.vector) * norm(q)) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}
function sameHits(got: { id: string; score: number }[], want: { id: string; score: number }[], what: string): void {
  assert.deepEqual(got.map((h) => h.id), want.map((h) => h.id), what);
  got.forEach((h, i) => assert.ok(Math.abs(h.score - want[i]!.score) < 1e-5, `${what}: score of ${h.id}`));
}

/** One SQL connection per engine; `null` when this machine has no PostgreSQL server (skipped). */
interface Engine {
  name: string;
  db: SqlClient | null;
}
let lite: PGlite;
let server: PgServer | null = null;
let client: pg.Client | null = null;
let pool: pg.Pool | null = null;
const engines: Engine[] = [
  { name: 'pglite', db: null },
  { name: 'postgres', db: null },
  { name: 'postgres pool', db: null },
];
before(async () => {
  lite = new PGlite({ extensions: { vector } });
  await lite.waitReady;
  engines[0]!.db = lite;
  server = await startPgServer();
  if (server) {
    client = new pg.Client({ connectionString: await server.createDatabase('adapter') });
    await client.connect();
    engines[1]!.db = client;
    // A pool lends each transaction and each search its own connection: the same contract.
    pool = new pg.Pool({ connectionString: await server.createDatabase('adapter_pool'), max: 4 });
    engines[2]!.db = pool as unknown as SqlClient;
  }
});
after(async () => {
  await lite.close();
  await client?.end();
  await pool?.end();
  await server?.stop();
});

/** `body` once per engine, as its own test. */
function eachEngine(title: string, body: (db: SqlClient, engine: string) => Promise<void>): void {
  for (const e of engines)
    test(`${e.name}: ${title}`, async (t) => {
      if (!e.db) return t.skip(`no PostgreSQL server: ${pgSkipReason()}`);
      await body(e.db, e.name);
    });
}

eachEngine('add, exact and HNSW search against the reference, filter, get, upsert, remove', async (db) => {
  const data = items(300, 12, 21);
  const ix = await openPgVectorIndex(db, { name: 'main', dim: 12, model: 'm1' });
  await ix.add(data.slice(0, 100));
  await ix.add(data.slice(100)); // 200 rows: one statement
  assert.equal(await ix.size(), 300);
  const r = rng(22);
  for (let t = 0; t < 5; t++) {
    const q = randVec(r, 12);
    const want = reference(data, q, 10);
    sameHits(await ix.search(q, 10, { exact: true }), want, `exact ${t}`);
    sameHits(await ix.search(q, 10, { ef: 300 }), want, `hnsw ${t}`);
    sameHits(await ix.search(q, 4, { filter: (_id, m) => m?.['tag'] === 'three' }), reference(data, q, 4, (it) => it.metadata!['tag'] === 'three'), `filter ${t}`);
  }
  const got = (await ix.get('v5'))!;
  const v = data[5]!.vector, nv = Math.hypot(...v);
  got.vector.forEach((x, j) => assert.ok(Math.abs(x - v[j]! / nv) < 1e-6, 'stored vector is v/|v|'));
  assert.deepEqual(got.metadata, { i: 5, tag: 'other' });
  assert.equal(await ix.get('nope'), undefined);

  await ix.add([{ id: 'v5', vector: data[6]!.vector.map((x) => -x), metadata: { moved: true } }]);
  const top = (await ix.search(data[6]!.vector.map((x) => -x), 1))[0]!;
  assert.deepEqual([top.id, top.metadata], ['v5', { moved: true }]);
  assert.ok(Math.abs(top.score - 1) < 1e-5);
  await ix.remove('v5');
  await assert.rejects(ix.remove('v5'), (e: unknown) => e instanceof UnknownVectorIdError && e.id === 'v5' && e.message.includes('clipfit_idx_main'));
  assert.equal(await ix.size(), 299);
  assert.equal((await ix.list()).length, 299);
  // A batch of more than 500 rows goes in one transaction.
  await ix.add(items(700, 12, 23).map((it) => ({ ...it, id: `w${it.id}` })));
  assert.equal(await ix.size(), 999);
  await ix.close();
});

eachEngine('dimension errors, reopening, needsRebuild, clear(model), replaceAll', async (db) => {
  const ix = await openPgVectorIndex(db, { name: 'labels', dim: 4, model: 'm1' });
  await assert.rejects(ix.add([{ id: 'a', vector: new Float32Array(5).fill(1) }]), (e: unknown) => e instanceof VectorDimensionError && e.id === 'a' && e.expected === 4 && e.actual === 5);
  await assert.rejects(ix.search(new Float32Array(3).fill(1), 1), (e: unknown) => e instanceof VectorDimensionError && e.actual === 3);
  await assert.rejects(openPgVectorIndex(db, { name: 'labels', dim: 8 }), (e: unknown) => e instanceof IndexMismatchError && /dimension 4/.test(e.message));
  await assert.rejects(openPgVectorIndex(db, { name: 'missing' }), (e: unknown) => e instanceof ConfigError && /give dim and model/.test(e.message));
  await assert.rejects(openPgVectorIndex(db, { name: 'Bad-Name', dim: 4, model: 'm' }), (e: unknown) => e instanceof ConfigError && e.field === 'name');
  await ix.add(items(10, 4, 24));
  assert.equal(ix.needsRebuild('m1'), false);
  assert.equal(ix.needsRebuild('m2'), true);
  await ix.clear('m2');
  assert.equal(await ix.size(), 0);
  const again = await openPgVectorIndex(db, { name: 'labels' });
  assert.equal(again.model, 'm2');
  assert.equal(again.dim, 4);

  const wide = items(6, 7, 25);
  const next: PgVectorIndex = await again.replaceAll(wide, { dim: 7, model: 'm3' });
  await assert.rejects(again.size(), (e: unknown) => e instanceof ConfigError && /closed/.test(e.message));
  assert.equal(next.dim, 7);
  sameHits(await next.search(wide[1]!.vector, 3, { exact: true }), reference(wide, wide[1]!.vector, 3), 'after replaceAll');
  const reread = await openPgVectorIndex(db, { name: 'labels' });
  assert.deepEqual([reread.dim, reread.model, await reread.size()], [7, 'm3', 6]);
  // A failing replaceAll (bad item) leaves the table as it was.
  await assert.rejects(next.replaceAll([{ id: 'x', vector: new Float32Array(2).fill(1) }], { dim: 3, model: 'm4' }), VectorDimensionError);
  // …and so does one that fails inside the transaction, after the DROP TABLE (jsonb refuses \u0000).
  await assert.rejects(next.replaceAll([{ id: 'x', vector: new Float32Array(3).fill(1), metadata: { s: 'a\u0000b' } }], { dim: 3, model: 'm4' }), /unicode|\\u0000/i);
  assert.deepEqual([next.dim, await next.size()], [7, 6]);
  const unchanged = await openPgVectorIndex(db, { name: 'labels' });
  assert.deepEqual([unchanged.dim, unchanged.model], [7, 'm3']);
});

test('openIndex: pglite:memory creates a pgvector index', async () => {
  const ix = await openIndex('pglite:memory', { dim: 3, model: 'm', name: 'tmp' });
  await ix.add([{ id: 'a', vector: Float32Array.of(1, 0, 0) }, { id: 'b', vector: Float32Array.of(0, 1, 0) }]);
  assert.equal((await ix.search(Float32Array.of(0.1, 1, 0), 1))[0]!.id, 'b');
  await ix.close();
});

test('openIndex: a postgres:// URL opens the index on the server, and a second handle sees its writes', async (t) => {
  if (!server) return t.skip(`no PostgreSQL server: ${pgSkipReason()}`);
  const url = await server.createDatabase('spec');
  const a = await openIndex(url, { dim: 3, model: 'm', name: 'shared' });
  const b = await openIndex(url, { name: 'shared' });
  assert.deepEqual([b.dim, b.model], [3, 'm']);
  await a.add([{ id: 'a', vector: Float32Array.of(1, 0, 0) }, { id: 'b', vector: Float32Array.of(0, 1, 0) }]);
  assert.deepEqual((await b.search(Float32Array.of(0.1, 1, 0), 2)).map((h) => h.id), ['b', 'a']);
  await b.remove('a');
  assert.equal(await a.get('a'), undefined);
  await a.close();
  await b.close();
  const rows = await server.admin<{ name: string; dim: number; model: string }>('SELECT name, dim, model FROM clipfit_indexes', [], 'spec');
  assert.deepEqual(rows, [{ name: 'shared', dim: 3, model: 'm' }]);
});
