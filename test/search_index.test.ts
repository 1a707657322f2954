// The folder vector index, exact mode: search against a float64 brute-force reference computed
// here, persistence across reopen, upsert and delete, the typed errors, and recovery of the log
// (torn tails cut, damage in the middle refused, a stale log after a half-done compaction dropped).

import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, CorruptIndexError, IndexLockedError, UnknownVectorIdError, VectorDimensionError } from '../src/errors.js';
import { crc32, crc32Portable } from '../src/search/crc32.js';
import { openFolderIndex } from '../src/search/folder_index.js';
import type { IndexItem } from '../src/search/index_types.js';
import { seededRandom } from '../src/util/random.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'clipfit-index-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `ix${n++}`);

const rng = seededRandom;
const randVec = (r: () => number, d: number) => Float32Array.from({ length: d }, () => r() * 2 - 1);
const items = (count: number, d: number, seed: number, prefix = 'v'): IndexItem[] => {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, vector: randVec(r, d), metadata: { i, even: i % 2 === 0 } }));
};

/** Cosine top-k over the raw vectors in float64: the reference. */
function reference(all: readonly IndexItem[], q: Float32Array, k: number, keep: (it: IndexItem) => boolean = () => true): { id: string; score: number }[] {
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const nq = norm(q);
  return all
    .filter(keep)
    .map((it) => ({ id: it.id, score: it.vector.reduce((s, x, j) => s + x * q[j]!, 0) / (norm(it.vector) * nq) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

function sameHits(got: { id: string; score: number }[], want: { id: string; score: number }[], what: string): void {
  assert.deepEqual(got.map((h) => h.id), want.map((h) => h.id), what);
  got.forEach((h, i) => assert.ok(Math.abs(h.score - want[i]!.score) < 1e-5, `${what}: score of ${h.id} ${h.score} vs ${want[i]!.score}`));
}

test('exact search equals a brute-force cosine reference, with and without a filter, around deleted rows', async () => {
  // 2500 × 32 floats: past the size where the scan goes native (usearch); the filter path is JS.
  const data = items(2500, 32, 1);
  const ix = await openFolderIndex(freshDir(), { dim: 32, model: 'm1', kind: 'exact' });
  await ix.add(data.slice(0, 1000));
  await ix.add(data.slice(1000));
  assert.equal(await ix.size(), 2500);
  const r = rng(99);
  for (let t = 0; t < 20; t++) {
    const q = randVec(r, 32);
    const hits = await ix.search(q, 10);
    sameHits(hits, reference(data, q, 10), `query ${t}`);
    assert.deepEqual(hits[0]!.metadata, { i: Number(hits[0]!.id.slice(1)), even: Number(hits[0]!.id.slice(1)) % 2 === 0 });
    const evens = await ix.search(q, 5, { filter: (_id, m) => m?.['even'] === true });
    sameHits(evens, reference(data, q, 5, (it) => it.metadata!['even'] === true), `filtered query ${t}`);
  }
  assert.deepEqual(await ix.search(randVec(r, 32), 0), []);
  assert.equal((await ix.search(randVec(r, 32), 5000)).length, 2500);
  // Holes left by deletes (zero rows) never come back, even when every live score is negative.
  for (let i = 0; i < 2500; i += 3) await ix.remove(`v${i}`);
  const left = data.filter((_, i) => i % 3 !== 0);
  for (let t = 0; t < 5; t++) {
    const q = randVec(r, 32);
    sameHits(await ix.search(q, 10), reference(left, q, 10), `after deletes ${t}`);
  }
  const all = await ix.search(randVec(r, 32), 5000);
  assert.equal(all.length, left.length);
  assert.ok(all.at(-1)!.score < 0 && all.every((h) => Number(h.id.slice(1)) % 3 !== 0));
  await ix.close();
});

test('upsert, delete, get and list persist across close and reopen', async () => {
  const dir = freshDir();
  const data = items(300, 16, 2);
  let ix = await openFolderIndex(dir, { dim: 16, model: 'm1' });
  await ix.add(data);
  // Upsert: v7 gets v8's direction (scaled) and new metadata; delete v3 and v200.
  const moved = { id: 'v7', vector: data[8]!.vector.map((x) => 3 * x), metadata: { moved: true } };
  await ix.add([moved]);
  await ix.remove('v3');
  await ix.remove('v200');
  const expected = data.filter((d) => d.id !== 'v3' && d.id !== 'v200').map((d) => (d.id === 'v7' ? moved : d));
  const check = async (what: string) => {
    assert.equal(await ix.size(), 298, what);
    assert.equal(await ix.get('v3'), undefined, what);
    const got = (await ix.get('v7'))!;
    assert.deepEqual(got.metadata, { moved: true }, what);
    const v = data[8]!.vector, nv = Math.hypot(...v);
    got.vector.forEach((x, j) => assert.ok(Math.abs(x - v[j]! / nv) < 1e-6, `${what}: stored vector is v/|v|`));
    assert.deepEqual((await ix.list()).map((e) => e.id).sort(), expected.map((e) => e.id).sort(), what);
    const q = data[8]!.vector;
    sameHits(await ix.search(q, 10), reference(expected, q, 10), what);
  };
  await check('before reopen');
  await ix.close();
  ix = await openFolderIndex(dir, {});
  assert.equal(ix.dim, 16);
  assert.equal(ix.model, 'm1');
  await check('after reopen (log replay)');
  await ix.compact();
  assert.equal(ix.info().generation, 1);
  assert.equal(ix.info().logBytes, 16);
  await ix.close();
  ix = await openFolderIndex(dir, {});
  await check('after reopen (snapshot)');
  // A deleted slot is reused by the next new id, and still found.
  await ix.add([{ id: 'new', vector: data[3]!.vector }]);
  assert.equal((await ix.search(data[3]!.vector, 1))[0]!.id, 'new');
  await ix.close();
  ix = await openFolderIndex(dir, {});
  assert.equal((await ix.search(data[3]!.vector, 1))[0]!.id, 'new');
  await ix.close();
});

test('typed errors: dimension, unknown id, zero vector, a second handle, corrupt meta.json', async () => {
  const dir = freshDir();
  const ix = await openFolderIndex(dir, { dim: 8, model: 'm1' });
  await assert.rejects(ix.add([{ id: 'a', vector: new Float32Array(8).fill(1) }, { id: 'bad', vector: new Float32Array(7).fill(1) }]), (e: unknown) => e instanceof VectorDimensionError && e.id === 'bad' && e.expected === 8 && e.actual === 7);
  assert.equal(await ix.size(), 0, 'a batch with a bad item writes nothing');
  await assert.rejects(ix.search(new Float32Array(9), 3), (e: unknown) => e instanceof VectorDimensionError && e.actual === 9);
  await assert.rejects(ix.remove('nope'), (e: unknown) => e instanceof UnknownVectorIdError && e.id === 'nope' && e.message.includes(dir));
  await assert.rejects(ix.add([{ id: 'z', vector: new Float32Array(8) }]), (e: unknown) => e instanceof ConfigError && /zero vector/.test(e.message));
  await assert.rejects(openFolderIndex(dir, {}), (e: unknown) => e instanceof IndexLockedError && e.pid === process.pid);
  await ix.close();
  await assert.rejects(openFolderIndex(dir, { dim: 9 }), (e: unknown) => e instanceof ConfigError && e.field === 'dim' && e.message.includes('meta.json'));
  await assert.rejects(openFolderIndex(path.join(root, 'absent'), {}), (e: unknown) => e instanceof ConfigError && e.message.includes('give dim and model'));

  const meta = path.join(dir, 'meta.json');
  const good = readFileSync(meta, 'utf8');
  writeFileSync(meta, good.slice(0, 20));
  await assert.rejects(openFolderIndex(dir, {}), (e: unknown) => e instanceof CorruptIndexError && e.file === meta && /not valid JSON/.test(e.message));
  writeFileSync(meta, JSON.stringify({ ...JSON.parse(good), dim: 'eight' }));
  await assert.rejects(openFolderIndex(dir, {}), (e: unknown) => e instanceof CorruptIndexError && e.file === meta && /dim must be a positive integer/.test(e.message));
  writeFileSync(meta, JSON.stringify({ ...JSON.parse(good), format: 'other/9' }));
  await assert.rejects(openFolderIndex(dir, {}), (e: unknown) => e instanceof CorruptIndexError && /format/.test(e.message));
  rmSync(meta);
  await assert.rejects(openFolderIndex(dir, { dim: 8, model: 'm1' }), (e: unknown) => e instanceof CorruptIndexError && e.file === meta && /missing/.test(e.message));
  assert.ok(!existsSync(path.join(dir, 'LOCK')), 'a failed open releases the lock');
});

test('a torn tail is cut at open; damage followed by good records is refused', async () => {
  const dir = freshDir();
  const data = items(30, 8, 3);
  let ix = await openFolderIndex(dir, { dim: 8, model: 'm1' });
  for (let i = 0; i < 30; i += 10) await ix.add(data.slice(i, i + 10));
  await ix.close();
  const log = path.join(dir, 'log.bin');
  const clean = readFileSync(log);
  const recordBytes = (clean.length - 16) / 3;

  // A partial record: the first 100 bytes of a copy of the last one.
  appendFileSync(log, clean.subarray(clean.length - recordBytes, clean.length - recordBytes + 100));
  ix = await openFolderIndex(dir, {});
  assert.equal(ix.info().truncatedBytes, 100);
  assert.equal(await ix.size(), 30);
  await ix.add([{ id: 'after', vector: data[0]!.vector }]);
  await ix.close();
  ix = await openFolderIndex(dir, {});
  assert.equal(ix.info().truncatedBytes, 0);
  assert.equal(await ix.size(), 31);
  await ix.close();

  // Garbage: a plausible length with a wrong crc, then random bytes; and a short header.
  const g = Buffer.alloc(64, 7);
  g.writeUInt32LE(40, 0);
  appendFileSync(log, g);
  ix = await openFolderIndex(dir, {});
  assert.equal(ix.info().truncatedBytes, 64);
  assert.equal(await ix.size(), 31);
  await ix.close();
  appendFileSync(log, Buffer.from([1, 2, 3]));
  ix = await openFolderIndex(dir, {});
  assert.equal(ix.info().truncatedBytes, 3);
  await ix.close();

  // A flipped byte inside the first record, with good records after it: not a torn tail.
  const bytes = readFileSync(log);
  bytes[16 + 8 + 20] ^= 0xff;
  writeFileSync(log, bytes);
  await assert.rejects(openFolderIndex(dir, {}), (e: unknown) => e instanceof CorruptIndexError && e.file === log && /byte 16: crc mismatch.*good records follow/.test(e.message));
});

test('a log older than the snapshot (compaction cut short) is dropped; a newer one is refused', async () => {
  const dir = freshDir();
  const data = items(20, 8, 4);
  let ix = await openFolderIndex(dir, { dim: 8, model: 'm1' });
  await ix.add(data.slice(0, 10));
  await ix.remove('v0');
  await ix.close();
  const log = path.join(dir, 'log.bin');
  const oldLog = readFileSync(log);
  ix = await openFolderIndex(dir, {});
  await ix.compact();
  await ix.close();
  // As if the process died after the snapshot rename and before the log reset.
  writeFileSync(log, oldLog);
  ix = await openFolderIndex(dir, {});
  assert.equal(await ix.size(), 9);
  assert.equal(await ix.get('v0'), undefined);
  await ix.add(data.slice(10));
  await ix.close();
  ix = await openFolderIndex(dir, {});
  assert.equal(await ix.size(), 19);
  await ix.close();
  // A log from a later generation than the snapshot means the snapshot is gone or old.
  rmSync(path.join(dir, 'snapshot.bin'));
  await assert.rejects(openFolderIndex(dir, {}), (e: unknown) => e instanceof CorruptIndexError && e.file === log && /newer than the snapshot/.test(e.message));
});

test('clear(model) relabels the index; replaceAll swaps in a new dimension; an interrupted swap is finished at open', async () => {
  const dir = freshDir();
  let ix = await openFolderIndex(dir, { dim: 8, model: 'm1' });
  await ix.add(items(10, 8, 5));
  assert.equal(ix.needsRebuild('m1'), false);
  assert.equal(ix.needsRebuild('m2'), true);
  await ix.clear('m2');
  assert.equal(await ix.size(), 0);
  assert.equal(ix.model, 'm2');
  await ix.add(items(4, 8, 6));
  await ix.close();
  ix = await openFolderIndex(dir, {});
  assert.equal(ix.model, 'm2');
  assert.equal(JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')).model, 'm2');
  assert.equal(await ix.size(), 4);

  const wide = items(4, 12, 7);
  const next = await ix.replaceAll(wide, { dim: 12, model: 'm3' });
  assert.equal(next.dim, 12);
  assert.equal(next.model, 'm3');
  assert.equal(await next.size(), 4);
  sameHits(await next.search(wide[2]!.vector, 2), reference(wide, wide[2]!.vector, 2), 'after replaceAll');
  await next.close();
  assert.ok(!existsSync(`${dir}.old`) && !existsSync(`${dir}.rebuild`));

  // Crash between the two renames: dir is gone, dir.old and a complete dir.rebuild remain.
  ix = await openFolderIndex(dir, {});
  await ix.close();
  const other = freshDir();
  const o = await openFolderIndex(other, { dim: 12, model: 'm4' });
  await o.add(wide.slice(0, 1));
  await o.close();
  renameSync(dir, `${dir}.old`);
  renameSync(other, `${dir}.rebuild`);
  ix = await openFolderIndex(dir, {});
  assert.equal(ix.model, 'm4');
  assert.equal(await ix.size(), 1);
  assert.ok(!existsSync(`${dir}.old`));
  await ix.close();
});

test('crc32 of the standard check string is 0xCBF43926 on both paths', () => {
  const check = Buffer.from('123456789');
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Portable(check), 0xcbf43926);
  const r = rng(5);
  const bytes = Uint8Array.from({ length: 1000 }, () => Math.floor(r() * 256));
  assert.equal(crc32(bytes), crc32Portable(bytes));
});
