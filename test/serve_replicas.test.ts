// `clipfit serve --index postgres://…` as replicas: real server processes sharing one database on a
// throwaway PostgreSQL with pgvector (test/pg_server.ts). What one replica writes, the other finds
// at once (adds, deletes, images); a replica SIGKILLed under concurrent writes loses nothing it
// acknowledged and leaves no half-written item (an image without its vector or the reverse); a
// replica of another model can neither write into the index nor answer from it, even after it was
// started first and another replica relabelled the index underneath it.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { seededRandom } from '../src/util/random.js';
import { pgSkipReason, startPgServer } from './pg_server.js';
import type { PgServer } from './pg_server.js';
import { startServeProcess } from './serve_process.js';
import type { ServeProcess } from './serve_process.js';
import { cosine, makeFixture, referenceEmbeddings } from './server_setup.js';
import type { Fixture } from './server_setup.js';

let fx: Fixture | null = null;
let pgs: PgServer | null = null;
let home = '';
let refs: Float32Array[] = [];
const running: ServeProcess[] = [];

before(async () => {
  fx = await makeFixture(8);
  if (!fx) return;
  pgs = await startPgServer();
  home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-replicas-'));
  refs = (await referenceEmbeddings(fx.onnxModel, true, [], fx.images)).images.map((v) => v.map((x) => x / Math.hypot(...v)));
});
after(async () => {
  for (const s of running) await s.kill();
  await pgs?.stop();
  fx?.cleanup();
  if (home) rmSync(home, { recursive: true, force: true });
});

async function replica(model: string, index: string, extra: string[] = []): Promise<ServeProcess> {
  const s = await startServeProcess(['--model', model, '--index', index, ...extra], { CLIPFIT_HOME: home });
  running.push(s);
  return s;
}

async function call(url: string, method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url + route, { method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  try {
    return { status: r.status, body: JSON.parse(text) };
  } catch {
    return { status: r.status, body: text };
  }
}

function upload(url: string, ids: string[], images: number[]): Promise<Response> {
  const f = new FormData();
  images.forEach((img, i) => f.append('file', new Blob([readFileSync(fx!.images[img]!)], { type: 'image/png' }), `${ids[i]}.png`));
  f.append('ids', JSON.stringify(ids));
  return fetch(`${url}/index`, { method: 'POST', body: f });
}

const searchIds = async (url: string, k = 100): Promise<string[]> => {
  const r = await call(url, 'POST', '/search', { query: 'a shape', k });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.results as { id: string }[]).map((h) => h.id);
};

/** Rows of the index `name` as the database holds them: id → vector, and id → image bytes. */
async function rows(db: string, name: string): Promise<{ vectors: Map<string, number[]>; images: Map<string, Buffer> }> {
  const v = await pgs!.admin<{ id: string; e: string }>(`SELECT id, embedding::text AS e FROM clipfit_idx_${name}`, [], db);
  const im = await pgs!.admin<{ id: string; bytes: Buffer }>(`SELECT id, bytes FROM clipfit_img_${name}`, [], db);
  return { vectors: new Map(v.map((r) => [r.id, JSON.parse(r.e) as number[]])), images: new Map(im.map((r) => [r.id, r.bytes])) };
}

test('two replicas on one database: adds, images and deletes made through one are seen through the other at once', { timeout: 300_000 }, async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  if (!pgs) return t.skip(`no PostgreSQL server: ${pgSkipReason()}`);
  const url = `${await pgs.createDatabase('shop')}#shoes`;
  const [a, b] = await Promise.all([replica(fx.onnxModel, url), replica(fx.onnxModel, url)]);
  assert.match(a.output(), /index postgresql:\/\/clipfit@127\.0\.0\.1:\d+\/shop#shoes: 0 items/);

  const res = await upload(a.url, ['red-0', 'blue-1', 'x-2'], [0, 1, 2]);
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal(((await res.json()) as { size: number }).size, 3);
  // B, which wrote nothing, finds A's items, with the vectors A's model made, and serves their images.
  assert.deepEqual((await searchIds(b.url)).sort(), ['blue-1', 'red-0', 'x-2']);
  assert.equal((await call(b.url, 'GET', '/index')).body.size, 3);
  const img = await fetch(`${b.url}/images/blue-1`);
  assert.equal(img.status, 200);
  assert.equal(img.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await img.arrayBuffer()), readFileSync(fx.images[1]!));
  const db = await rows('shop', 'shoes');
  for (const [id, i] of [['red-0', 0], ['blue-1', 1], ['x-2', 2]] as const) assert.ok(cosine(db.vectors.get(id)!, refs[i]!) > 1 - 1e-5, `vector of ${id}`);

  // The top hit for an image's own embedding is that image, through either replica (same index).
  const viaA = await call(a.url, 'POST', '/search', { query: 'a shape', k: 3 });
  const viaB = await call(b.url, 'POST', '/search', { query: 'a shape', k: 3 });
  assert.deepEqual(viaB.body.results, viaA.body.results);

  // A delete through B is gone through A at once, image and all; B adds, A sees it.
  assert.equal((await call(b.url, 'DELETE', '/index/red-0')).status, 200);
  assert.deepEqual((await searchIds(a.url)).sort(), ['blue-1', 'x-2']);
  assert.equal((await fetch(`${a.url}/images/red-0`)).status, 404);
  assert.equal((await call(a.url, 'DELETE', '/index/red-0')).status, 404);
  assert.equal((await upload(b.url, ['green-3'], [3])).status, 201);
  assert.deepEqual((await searchIds(a.url)).sort(), ['blue-1', 'green-3', 'x-2']);
  // An upsert through A of an id B wrote replaces image and vector for both.
  assert.equal((await upload(a.url, ['green-3'], [4])).status, 201);
  assert.deepEqual(Buffer.from(await (await fetch(`${b.url}/images/green-3`)).arrayBuffer()), readFileSync(fx.images[4]!));
  assert.ok(cosine((await rows('shop', 'shoes')).vectors.get('green-3')!, refs[4]!) > 1 - 1e-5);
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
});

test('a replica SIGKILLed under concurrent writes loses nothing it acknowledged and leaves no half-written item', { timeout: 600_000 }, async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  if (!pgs) return t.skip(`no PostgreSQL server: ${pgSkipReason()}`);
  const url = `${await pgs.createDatabase('crash')}#cat`;
  const random = seededRandom(16016);
  const live = new Map<string, number>(); // acknowledged adds not deleted since: id → image
  const deleted = new Set<string>();
  const unsure = new Set<string>(); // sent, never answered
  let nextId = 0, acked = 0, kills = 0;
  const survivor = await replica(fx.onnxModel, url);
  for (let round = 0; round < 3; round++) {
    const victim = await replica(fx.onnxModel, url);
    const killAfter = 6 + Math.floor(random() * 8);
    let answered = 0, killed = false;
    const client = async () => {
      while (!killed) {
        if (random() < 0.75 || live.size < 3) {
          const img = Math.floor(random() * fx!.images.length);
          const ids = [`k${round}-${nextId++}-${img}`, `k${round}-${nextId++}-${(img + 1) % fx!.images.length}`];
          ids.forEach((id) => unsure.add(id));
          const res = await upload(victim.url, ids, [img, (img + 1) % fx!.images.length]).catch(() => null);
          if (res?.status === 201) {
            acked++;
            for (const id of ids) {
              unsure.delete(id);
              live.set(id, Number(id.split('-')[2]));
            }
          } else if (res) assert.fail(`add answered ${res.status}: ${await res.text()}`);
        } else {
          const id = [...live.keys()][Math.floor(random() * live.size)]!;
          live.delete(id);
          unsure.add(id);
          const res = await fetch(`${victim.url}/index/${id}`, { method: 'DELETE' }).catch(() => null);
          if (res?.status === 200) {
            acked++;
            unsure.delete(id);
            deleted.add(id);
          } else if (res) assert.fail(`delete answered ${res.status}: ${await res.text()}`);
        }
        if (++answered >= killAfter && !killed) {
          killed = true;
          await victim.kill();
          kills++;
        }
      }
    };
    await Promise.all([client(), client(), client()]);

    // What the database holds after the kill: every acknowledged add, no acknowledged delete, and
    // every item whole — its image and its vector, both of the uploaded image.
    const db = await rows('crash', 'cat');
    assert.deepEqual([...db.vectors.keys()].sort(), [...db.images.keys()].sort(), `round ${round}: an image without its vector, or a vector without its image`);
    for (const [id, img] of live) {
      assert.ok(db.vectors.has(id), `round ${round}: acknowledged add ${id} is gone`);
      assert.ok(cosine(db.vectors.get(id)!, refs[img]!) > 1 - 1e-5, `round ${round}: vector of ${id}`);
      assert.deepEqual(db.images.get(id), readFileSync(fx.images[img]!), `round ${round}: image of ${id}`);
    }
    for (const id of deleted) assert.ok(!db.vectors.has(id), `round ${round}: acknowledged delete of ${id} came back`);
    for (const id of db.vectors.keys()) assert.ok(live.has(id) || unsure.has(id), `round ${round}: ${id} was never sent`);
    // The other replica, which ran all along, answers from the same rows.
    assert.ok(db.vectors.size <= 100, 'few enough items for one /search to list them all');
    assert.deepEqual((await searchIds(survivor.url)).sort(), [...db.vectors.keys()].sort(), `round ${round}: the survivor's search`);
    assert.equal((await call(survivor.url, 'GET', '/index')).body.size, db.vectors.size);
    console.log(`# replicas round ${round}: killed after ${answered} answers; ${db.vectors.size} items (${live.size} acknowledged live, ${unsure.size} in flight at the kill)`);
    for (const id of unsure) {
      const img = Number(id.split('-')[2]);
      if (db.vectors.has(id)) live.set(id, img);
      else live.delete(id);
    }
    unsure.clear();
  }
  console.log(`# replicas: ${kills} SIGKILLs, ${acked} acknowledged writes, none lost`);
  assert.equal(kills, 3);
  assert.equal(await survivor.stop(), 0);
});

test("a replica of another model can't write into the index, nor answer from it once another relabelled it", { timeout: 300_000 }, async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  if (!pgs) return t.skip(`no PostgreSQL server: ${pgSkipReason()}`);
  const url = await pgs.createDatabase('models');
  const a = await replica(fx.onnxModel, url);
  assert.equal((await upload(a.url, ['one', 'two'], [0, 1])).status, 201);
  const before = await rows('models', 'default');

  // B serves another model (other weights, same dimension): the index's label says A's model.
  const b = await replica(fx.plainModel, url);
  assert.match(b.output(), /holds vectors of tiny-test@[0-9a-f]{12}, not of tiny-test@[0-9a-f]{12}/);
  const add = await upload(b.url, ['three'], [2]);
  assert.equal(add.status, 409);
  assert.equal(((await add.json()) as { error: { code: string } }).error.code, 'needs_reindex');
  assert.equal((await call(b.url, 'POST', '/search', { query: 'a shape' })).status, 409);
  assert.deepEqual(await rows('models', 'default'), before, 'B wrote nothing');

  // C, of B's model, rebuilds the index for it from the stored images (relabelling it) while A
  // still runs: A's next write and search are refused, not mixed into C's vectors.
  await b.stop();
  const c = await replica(fx.plainModel, url, ['--reindex']);
  assert.match(c.output(), /reindexed the primary index: 2 items/);
  const relabelled = await rows('models', 'default');
  assert.deepEqual([...relabelled.vectors.keys()].sort(), ['one', 'two']);
  // …encoded again by C's model from the images in the database.
  const plain = (await referenceEmbeddings(fx.plainModel, false, [], fx.images.slice(0, 2))).images.map((v) => v.map((x) => x / Math.hypot(...v)));
  assert.ok(cosine(relabelled.vectors.get('one')!, plain[0]!) > 1 - 1e-5 && cosine(relabelled.vectors.get('two')!, plain[1]!) > 1 - 1e-5);
  assert.ok(cosine(relabelled.vectors.get('one')!, refs[0]!) < 0.99, "not A's vectors");
  const late = await upload(a.url, ['four'], [3]);
  assert.equal(late.status, 409, await late.clone().text());
  assert.match(((await late.json()) as { error: { message: string } }).error.message, /relabelled/);
  assert.equal((await call(a.url, 'POST', '/search', { query: 'a shape' })).status, 409);
  assert.deepEqual(await rows('models', 'default'), relabelled, 'A wrote nothing after the relabel');
  assert.deepEqual((await searchIds(c.url)).sort(), ['one', 'two']);
  assert.equal((await upload(c.url, ['five'], [4])).status, 201);
  await a.stop();
  await c.stop();
});
