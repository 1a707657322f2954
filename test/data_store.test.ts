import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DatasetError } from '../src/errors.js';
import { datasetInfo, deleteDataset, Document, LABEL_TAG, listDatasets, pairDocument, pairImage, pairText, pull, push, storeHome } from '../src/data/index.js';
import type { DocumentArray } from '../src/data/index.js';
import { png, tempDir, writeFiles } from './data_helpers.js';

async function setup(t: Parameters<typeof tempDir>[0]) {
  const src = tempDir(t, 'clipfit-src-');
  const home = tempDir(t, 'clipfit-home-');
  const red = await png(255, 0, 0);
  const green = await png(0, 255, 0);
  const blue = await png(0, 0, 255);
  writeFiles(src, { 'red.png': red, 'green.png': green });
  const make = () => [
    pairDocument('a red square', { uri: path.join(src, 'red.png') }, { [LABEL_TAG]: 0 }),
    pairDocument('a green square', { uri: path.join(src, 'green.png') }, { [LABEL_TAG]: 1 }),
    pairDocument('a blue square', { blob: blue }, { [LABEL_TAG]: 2 }),
    pairDocument('red again, inline', { uri: `data:image/png;base64,${red.toString('base64')}` }, { [LABEL_TAG]: 0 }),
  ];
  return { src, home, opts: { env: { CLIPFIT_HOME: home } }, red, green, blue, make };
}

const imageBytes = (docs: DocumentArray) => docs.map((d) => readFileSync(pairImage(d).uri!));

test('push copies images into a self-contained version; pull returns the documents', async (t) => {
  const { src, home, opts, red, green, blue, make } = await setup(t);
  const r = await push('squares', make(), opts);
  assert.equal(r.version, 1);
  assert.equal(r.created, true);
  assert.equal(r.dir, path.join(home, 'datasets', 'squares', 'v1'));
  assert.equal(r.meta.count, 4);
  assert.equal(r.meta.images, 3); // red twice (path and data: URI) is one file
  assert.equal(r.meta.bytes, red.length + green.length + blue.length);
  assert.match(r.meta.sha256, /^[0-9a-f]{64}$/);
  assert.ok(!Number.isNaN(Date.parse(r.meta.created)));
  assert.deepEqual(readdirSync(r.dir).sort(), ['docs.jsonl', 'images', 'meta.json']);
  assert.equal(readFileSync(path.join(r.dir, 'docs.jsonl'), 'utf8').trim().split('\n').length, 4);
  assert.ok(!readFileSync(path.join(r.dir, 'docs.jsonl'), 'utf8').includes(src), 'no source paths in the stored JSON');
  rmSync(src, { recursive: true }); // the originals are gone: the version must not need them
  const docs = await pull('squares', opts);
  assert.deepEqual(docs.map(pairText), ['a red square', 'a green square', 'a blue square', 'red again, inline']);
  assert.deepEqual(docs.map((d) => d.tags[LABEL_TAG]), [0, 1, 2, 0]);
  for (const d of docs) assert.ok(pairImage(d).uri!.startsWith(path.join(r.dir, 'images') + path.sep));
  assert.deepEqual(imageBytes(docs), [red, green, blue, red]);
  assert.ok(docs.every((d) => pairImage(d).uri!.endsWith('.png')));
});

test('same content again is a no-op; new content is v2; overwrite replaces the latest in place', async (t) => {
  const { opts, make, blue } = await setup(t);
  const v1 = await push('sq', make(), opts);
  const again = await push('sq', make(), opts); // new Documents with new ids, same content
  assert.equal(again.created, false);
  assert.equal(again.version, 1);
  assert.equal(again.meta.sha256, v1.meta.sha256);
  const changed = make();
  changed[0]!.chunks[0]!.text = 'a crimson square';
  const v2 = await push('sq', changed, opts);
  assert.equal(v2.version, 2);
  assert.equal(v2.created, true);
  assert.notEqual(v2.meta.sha256, v1.meta.sha256);
  assert.equal(pairText((await pull('sq', opts))[0]!), 'a crimson square');
  assert.equal(pairText((await pull('sq', { ...opts, version: 1 }))[0]!), 'a red square');
  // overwrite: v2 replaced by new content, no v3.
  const only = [pairDocument('just blue', { blob: blue })];
  const o = await push('sq', only, { ...opts, overwrite: true });
  assert.equal(o.version, 2);
  assert.equal(o.created, true);
  assert.deepEqual((await pull('sq', opts)).map(pairText), ['just blue']);
  assert.deepEqual((await listDatasets(opts)).map((l) => [l.name, l.versions, l.latest.count]), [['sq', [1, 2], 1]]);
  assert.equal((await datasetInfo('sq', { ...opts, version: 1 })).count, 4);
  // Pushing v1's content after v2 is new relative to the latest: v3 (pull() gives what was pushed last).
  assert.equal((await push('sq', make(), opts)).version, 3);
});

test('list and delete', async (t) => {
  const { opts, make } = await setup(t);
  await push('b-set', make(), opts);
  await push('a.set_1', make().slice(0, 2), opts);
  await push('a.set_1', make().slice(0, 1), opts);
  assert.deepEqual((await listDatasets(opts)).map((l) => [l.name, l.versions]), [['a.set_1', [1, 2]], ['b-set', [1]]]);
  await deleteDataset('a.set_1', 1, opts);
  assert.deepEqual((await listDatasets(opts)).map((l) => [l.name, l.versions]), [['a.set_1', [2]], ['b-set', [1]]]);
  await assert.rejects(pull('a.set_1', { ...opts, version: 1 }), (e: unknown) => e instanceof DatasetError && /no such version \(have v2\)/.test(e.message));
  await deleteDataset('b-set', undefined, opts);
  assert.deepEqual((await listDatasets(opts)).map((l) => l.name), ['a.set_1']);
  await assert.rejects(pull('b-set', opts), (e: unknown) => e instanceof DatasetError && e.dataset === 'b-set' && /not found/.test(e.message));
  await assert.rejects(deleteDataset('b-set', undefined, opts), DatasetError);
  await assert.rejects(pull('a.set_1', { ...opts, version: 0 }), /bad version 0/);
});

test('bad names are rejected before anything is written', async (t) => {
  const { home, opts, make } = await setup(t);
  for (const name of ['../x', '', '.', '..', 'a/b', 'a\\b', '.hidden', '-x', 'x'.repeat(101), 'white space']) {
    await assert.rejects(push(name, make(), opts), (e: unknown) => e instanceof DatasetError && e.message.includes('bad name'), name);
    await assert.rejects(pull(name, opts), DatasetError);
    await assert.rejects(deleteDataset(name, undefined, opts), DatasetError);
  }
  assert.ok(!existsSync(path.join(home, 'x')));
  assert.deepEqual(existsSync(path.join(home, 'datasets')) ? readdirSync(path.join(home, 'datasets')) : [], []);
});

test('a push that fails midway leaves no version and no temp folder; stale leftovers are ignored', async (t) => {
  const { home, opts, make } = await setup(t);
  const docs = make();
  docs.splice(2, 0, pairDocument('lost', { uri: '/definitely/not/here.png' }));
  await assert.rejects(push('broken', docs, opts), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.match(e.message, /dataset 'broken': document 2 .*chunks\[1\]: cannot store its image: uri '\/definitely\/not\/here.png' \(missing\)/);
    return true;
  });
  const dsDir = path.join(home, 'datasets', 'broken');
  assert.deepEqual(readdirSync(dsDir), []);
  // A push killed mid-write leaves a .tmp-* folder; a v<N> folder without meta.json is incomplete.
  writeFiles(dsDir, { '.tmp-99999-abcdef/docs.jsonl': '{"half', 'v7/docs.jsonl': '' });
  assert.deepEqual(await listDatasets(opts), []);
  await assert.rejects(pull('broken', opts), /not found/);
  const r = await push('broken', make(), opts);
  assert.equal(r.version, 1);
  assert.equal((await pull('broken', opts)).length, 4);
});

test('CLIPFIT_HOME from the environment, default ~/.cache/clipfit; docs without images are stored as is', async (t) => {
  assert.equal(storeHome({ env: {} }), path.join(os.homedir(), '.cache', 'clipfit'));
  const home = tempDir(t);
  const saved = process.env['CLIPFIT_HOME'];
  process.env['CLIPFIT_HOME'] = home;
  t.after(() => (saved === undefined ? delete process.env['CLIPFIT_HOME'] : (process.env['CLIPFIT_HOME'] = saved)));
  const r = await push('texts', [new Document({ text: 'only text', tags: { k: 'v' } })]);
  assert.equal(r.dir, path.join(home, 'datasets', 'texts', 'v1'));
  assert.equal(r.meta.images, 0);
  const [d] = await pull('texts');
  assert.equal(d!.text, 'only text');
  assert.deepEqual(d!.tags, { k: 'v' });
  const empty = await push('empty', []);
  assert.equal(empty.meta.count, 0);
  assert.equal((await pull('empty')).length, 0);
});
