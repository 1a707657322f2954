// An index in Postgres when the database is not what it should be, through the server's public API
// (serve with --index postgres://…) on a throwaway PostgreSQL with pgvector: a database without the
// vector extension, a table made for another dimension or by another program, a server that refuses
// connections, a connection cut in the middle of a write, and the whole database going away and
// coming back. Each is a typed error at start or a 503 (503, then success again) on the HTTP side,
// and never a partial write.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import { ConfigError, IndexMismatchError, IndexUnavailableError } from '../src/errors.js';
import { openIndex } from '../src/search/open_index.js';
import { fixtureAndPg } from './pg_fixture.js';
import { imageForm, start } from './server_setup.js';
import type { Client } from './server_setup.js';

const ctx = fixtureAndPg(4);

/** The tables of `db` whose names start with clipfit_. */
const tables = async (db: string): Promise<string[]> =>
  (await ctx.pgs!.admin<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE tablename LIKE 'clipfit%' ORDER BY 1", [], db)).map((r) => r.t);

const count = async (db: string, table: string, id: string): Promise<number> => (await ctx.pgs!.admin<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE id = $1`, [id], db))[0]!.n;

test('a database without the vector extension: a typed error naming it, at start, and nothing created', { timeout: 120_000 }, async (t) => {
  if (!ctx.ready(t)) return;
  // A role that may use the database but not install extensions (pgvector is not a trusted one).
  await ctx.pgs!.admin('CREATE ROLE shopapp LOGIN');
  await ctx.pgs!.createDatabase('noext');
  await ctx.pgs!.admin('GRANT CREATE ON SCHEMA public TO shopapp', [], 'noext');
  const url = `postgresql://shopapp:hunter2@127.0.0.1:${ctx.pgs!.port}/noext`;
  const check = (e: unknown) => e instanceof ConfigError && /pgvector extension is not installed/.test(e.message) && /CREATE EXTENSION vector/.test(e.message) && !e.message.includes('hunter2');
  await assert.rejects(start({ model: ctx.fx!.onnxModel, index: url }), check);
  await assert.rejects(openIndex(url, { dim: 4, model: 'm' }), check);
  assert.deepEqual(await tables('noext'), []);
});

test('a table made for another dimension, or by another program: IndexMismatchError at start, the table untouched', { timeout: 120_000 }, async (t) => {
  if (!ctx.ready(t)) return;
  const url = await ctx.pgs!.createDatabase('dims');
  const other = await openIndex(url, { name: 'default', dim: 3, model: 'other-model@000000000000' });
  await other.add([{ id: 'keep', vector: Float32Array.of(1, 2, 3) }]);
  await other.close();
  await assert.rejects(start({ model: ctx.fx!.onnxModel, index: url }), (e: unknown) => e instanceof IndexMismatchError && /dimension 3/.test(e.message) && /another model/.test(e.message));
  // A table of clipfit's name that clipfit did not make: refused before an index or label is added.
  await ctx.pgs!.admin('CREATE TABLE clipfit_idx_legacy (id integer PRIMARY KEY, embedding real[])', [], 'dims');
  await assert.rejects(start({ model: ctx.fx!.onnxModel, index: `${url}#legacy` }), (e: unknown) => e instanceof IndexMismatchError && /id integer, embedding real\[\]/.test(e.message));
  assert.deepEqual(await ctx.pgs!.admin('SELECT name, dim FROM clipfit_indexes ORDER BY name', [], 'dims'), [{ name: 'default', dim: 3 }]);
  assert.deepEqual(await ctx.pgs!.admin("SELECT indexname FROM pg_indexes WHERE tablename = 'clipfit_idx_legacy'", [], 'dims'), [{ indexname: 'clipfit_idx_legacy_pkey' }]);
  assert.equal(await count('dims', 'clipfit_idx_default', 'keep'), 1);
});

test('a database that refuses connections, or does not exist: typed errors at start, password not shown', { timeout: 120_000 }, async (t) => {
  if (!ctx.ready(t)) return;
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const url = `postgresql://clipfit:hunter2@127.0.0.1:${port}/nothing`;
  await assert.rejects(start({ model: ctx.fx!.onnxModel, index: url }), (e: unknown) => e instanceof IndexUnavailableError && /ECONNREFUSED|refused/i.test(e.message) && !e.message.includes('hunter2'));
  // A server that answers, but not for that database: the URL is wrong, not the network.
  await assert.rejects(start({ model: ctx.fx!.onnxModel, index: `postgresql://clipfit:hunter2@127.0.0.1:${ctx.pgs!.port}/nosuchdb` }), (e: unknown) => e instanceof ConfigError && /"nosuchdb" does not exist/.test(e.message) && !e.message.includes('hunter2'));
});

test('a connection cut in the middle of an add: 503, and neither the image nor the vector is written', { timeout: 120_000 }, async (t) => {
  if (!ctx.ready(t)) return;
  const url = await ctx.pgs!.createDatabase('cut');
  const srv: Client = await start({ model: ctx.fx!.onnxModel, index: url });
  const blocker = new pg.Client({ connectionString: url });
  try {
    assert.equal((await srv.form('/index', imageForm([ctx.fx!.images[0]!], { ids: '["before"]' }))).status, 201);
    // Hold the vector table, so the add stops inside its transaction after writing the image row.
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE clipfit_idx_default IN ACCESS EXCLUSIVE MODE');
    const pending = srv.form('/index', imageForm([ctx.fx!.images[1]!], { ids: '["cut"]' }));
    let waiting: { pid: number; query: string } | undefined;
    for (let i = 0; i < 200 && !waiting; i++) {
      waiting = (await ctx.pgs!.admin<{ pid: number; query: string }>("SELECT pid, query FROM pg_stat_activity WHERE datname = 'cut' AND wait_event_type = 'Lock'"))[0];
      if (!waiting) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(waiting, 'the add is waiting on the lock');
    assert.match(waiting.query, /INSERT INTO clipfit_idx_default/);
    await ctx.pgs!.admin('SELECT pg_terminate_backend($1)', [waiting.pid]);
    const res = await pending;
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'unavailable');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.match(res.body.error.message, /nothing was written/);
    await blocker.query('ROLLBACK');
    assert.equal(await count('cut', 'clipfit_img_default', 'cut'), 0, 'no image of the cut add');
    assert.equal(await count('cut', 'clipfit_idx_default', 'cut'), 0, 'no vector of the cut add');
    // The pool dropped the dead connection: the next requests work.
    assert.equal((await srv.form('/index', imageForm([ctx.fx!.images[1]!], { ids: '["after"]' }))).status, 201);
    assert.deepEqual((await srv.json('GET', '/index')).body.size, 2);
  } finally {
    await blocker.end().catch(() => undefined);
    await srv.close();
  }
});

test('the database goes away and comes back: every route that needs it is a 503 meanwhile, then works again', { timeout: 120_000 }, async (t) => {
  if (!ctx.ready(t)) return;
  const url = await ctx.pgs!.createDatabase('away');
  const srv = await start({ model: ctx.fx!.onnxModel, index: url });
  try {
    assert.equal((await srv.form('/index', imageForm([ctx.fx!.images[0]!], { ids: '["kept"]' }))).status, 201);
    await ctx.pgs!.halt();
    const answers = [
      await srv.json('POST', '/search', { query: 'a red circle' }),
      await srv.form('/index', imageForm([ctx.fx!.images[2]!], { ids: '["lost"]' })),
      await srv.json('DELETE', '/index/kept'),
      await srv.json('GET', '/index'),
      await srv.json('GET', '/images/kept'),
    ];
    for (const a of answers) {
      assert.equal(a.status, 503, JSON.stringify(a.body));
      assert.equal(a.body.error.code, 'unavailable');
    }
    // The server itself is up, and says so; what needs no database still answers.
    assert.equal((await srv.json('GET', '/healthz')).status, 200);
    assert.equal((await srv.json('POST', '/encode', { texts: ['a red circle'] })).status, 200);
    await ctx.pgs!.resume();
    const found = await srv.json('POST', '/search', { query: 'a red circle' });
    assert.equal(found.status, 200);
    assert.deepEqual(found.body.results.map((h: { id: string }) => h.id), ['kept']);
    const img = await fetch(`${srv.url}/images/kept`);
    assert.deepEqual(Buffer.from(await img.arrayBuffer()), readFileSync(ctx.fx!.images[0]!));
    assert.equal(await count('away', 'clipfit_img_default', 'lost'), 0);
    assert.equal((await srv.json('GET', '/index')).body.size, 1);
  } finally {
    await srv.close();
  }
});
