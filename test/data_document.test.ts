import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataError } from '../src/errors.js';
import { Document, DocumentArray, isPair, LABEL_TAG, pairDocument, pairImage, pairText, seededRandom } from '../src/data/index.js';

const docs = (n: number) => new DocumentArray(Array.from({ length: n }, (_, i) => new Document({ text: `t${i}` })));

test('Document: random 32-hex ids, fields, content', () => {
  const a = new Document();
  const b = new Document({ text: 'hi', tags: { k: 1 } });
  assert.match(a.id, /^[0-9a-f]{32}$/);
  assert.notEqual(a.id, b.id);
  assert.equal(b.content, 'hi');
  assert.deepEqual(b.tags, { k: 1 });
  assert.equal(a.chunks.length, 0);
  assert.ok(a.chunks instanceof DocumentArray);
  const t = new Document({ tensor: new Float32Array(6), shape: [2, 3] });
  assert.deepEqual(t.shape, [2, 3]);
  assert.throws(() => new Document({ tensor: new Float32Array(5), shape: [2, 3] }), (e: unknown) => e instanceof DataError && e.field === 'shape');
});

test('pairDocument, isPair, pairText, pairImage', () => {
  const blob = new Uint8Array([1, 2, 3]);
  const p = pairDocument('a red square', { uri: '/x/red.png' }, { [LABEL_TAG]: 4 });
  const q = pairDocument('a blue square', { blob });
  assert.ok(isPair(p) && isPair(q));
  assert.equal(p.chunks[0]!.modality, 'text');
  assert.equal(p.chunks[1]!.modality, 'image');
  assert.equal(pairText(p), 'a red square');
  assert.equal(pairImage(p).uri, '/x/red.png');
  assert.equal(pairImage(q).blob, blob);
  assert.equal(p.tags[LABEL_TAG], 4);
  const notPair = new Document({ chunks: [{ text: 'only text', modality: 'text' }] });
  assert.equal(isPair(notPair), false);
  assert.equal(isPair(new Document({ chunks: [{ text: 'a', modality: 'text' }, { text: 'b', modality: 'text' }] })), false);
  assert.throws(() => pairText(notPair), (e: unknown) => e instanceof DataError && e.field === 'chunks' && e.message.includes(notPair.id));
});

test('DocumentArray: array-like, filter/slice stay DocumentArrays, map gives plain arrays, texts', () => {
  const da = docs(4);
  assert.equal(da.length, 4);
  assert.equal(da[2]!.text, 't2');
  assert.deepEqual([...da].map((d) => d.text), ['t0', 't1', 't2', 't3']);
  da.push(new Document({ uri: 'x.png' }));
  assert.equal(da.length, 5);
  const f = da.filter((d) => d.text !== 't1');
  assert.ok(f instanceof DocumentArray);
  assert.equal(f.length, 4);
  assert.ok(da.slice(1, 3) instanceof DocumentArray);
  const m = da.map((d) => d.text);
  assert.equal(Object.getPrototypeOf(m), Array.prototype);
  assert.deepEqual(da.texts, ['t0', 't1', 't2', 't3', undefined]);
  assert.deepEqual(da.uris.at(-1), 'x.png');
  assert.equal(new DocumentArray([{ text: 'init' }])[0]!.text, 'init');
});

test('DocumentArray.embeddings: (n, dim) matrix in and out', () => {
  const da = docs(3);
  da.embeddings = { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [3, 2] };
  assert.deepEqual(Array.from(da[1]!.embedding!), [3, 4]);
  const m = da.embeddings;
  assert.deepEqual(m.shape, [3, 2]);
  assert.deepEqual(Array.from(m.data), [1, 2, 3, 4, 5, 6]);
  da.embeddings = [new Float32Array([9, 8]), new Float32Array([7, 6]), new Float32Array([5, 4])];
  assert.deepEqual(Array.from(da.embeddings.data), [9, 8, 7, 6, 5, 4]);
  assert.throws(() => (da.embeddings = { data: new Float32Array(4), shape: [2, 2] }), /2 rows for 3 documents/);
  delete da[1]!.embedding;
  assert.throws(() => da.embeddings, (e: unknown) => e instanceof DataError && e.field === '[1].embedding');
  da[1]!.embedding = new Float32Array(3);
  assert.throws(() => da.embeddings, /has 3 values, document 0 has 2/);
});

test('seededRandom is uniform-looking; shuffle is a seeded permutation', () => {
  const r = seededRandom(123);
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
  const da = docs(30);
  const a = da.shuffle(7).map((d) => d.text);
  const b = da.shuffle(7).map((d) => d.text);
  const c = da.shuffle(8).map((d) => d.text);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.notDeepEqual(a, da.texts);
  assert.deepEqual([...a].sort(), [...da.texts].sort());
});

test('split(ratio, seed): sizes, disjoint cover, original order, determinism, groups', () => {
  const da = docs(20);
  const [train, val] = da.split(0.25, 3);
  assert.equal(val.length, 5);
  assert.equal(train.length, 15);
  const all = [...train, ...val].map((d) => d.text).sort();
  assert.deepEqual(all, [...da.texts].sort());
  const idx = (d: Document) => Number(d.text!.slice(1));
  for (const part of [train, val]) for (let i = 1; i < part.length; i++) assert.ok(idx(part[i - 1]!) < idx(part[i]!));
  assert.deepEqual(da.split(0.25, 3)[1].texts, val.texts);
  assert.notDeepEqual(da.split(0.25, 4)[1].texts, val.texts);
  assert.equal(da.split(0, 1)[1].length, 0);
  assert.equal(da.split(1, 1)[0].length, 0);
  assert.throws(() => da.split(1.5), (e: unknown) => e instanceof DataError && e.field === 'ratio');
  // Groups (4 docs per label) never straddle the split.
  da.forEach((d, i) => (d.tags[LABEL_TAG] = Math.floor(i / 4)));
  for (const seed of [1, 2, 3]) {
    const [tr, va] = da.split(0.3, seed, { groupBy: 'label' });
    const trL = new Set(tr.map((d) => d.tags[LABEL_TAG]));
    assert.ok(va.every((d) => !trL.has(d.tags[LABEL_TAG])));
    assert.equal(va.length % 4, 0);
    assert.ok(va.length >= 6 && va.length <= 8); // whole groups until ≥ round(0.3·20) = 6
  }
});

test('JSON round trip: blob as base64, tensor with shape, embedding, tags, chunks, matches with scores', () => {
  const root = new Document({
    id: 'root1',
    tags: { [LABEL_TAG]: 'x', nested: { a: [1, 2] } },
    chunks: [
      { text: 'caption', modality: 'text' },
      { uri: 'img.png', blob: new Uint8Array([0, 1, 255]), modality: 'image', tensor: new Float32Array([0.1, -2.5, 3, 4, 5, 1e-8]), shape: [2, 3] },
    ],
    matches: [{ text: 'near', scores: { cosine: 0.75 } }],
    embedding: new Float32Array([0.1, 0.2]),
  });
  const json = JSON.parse(JSON.stringify(new DocumentArray([root])));
  assert.equal(json[0].chunks[1].blob, 'AAH/'); // base64 of 00 01 FF
  assert.deepEqual(json[0].chunks[1].tensor.shape, [2, 3]);
  const back = DocumentArray.fromJSON(JSON.stringify(json))[0]!;
  assert.equal(back.id, 'root1');
  assert.deepEqual(back.tags, root.tags);
  assert.equal(pairText(back), 'caption');
  const img = pairImage(back);
  assert.deepEqual(Array.from(img.blob!), [0, 1, 255]);
  assert.deepEqual(img.shape, [2, 3]);
  assert.deepEqual(Array.from(img.tensor!), Array.from(new Float32Array([0.1, -2.5, 3, 4, 5, 1e-8])));
  assert.deepEqual(Array.from(back.embedding!), Array.from(new Float32Array([0.1, 0.2])));
  assert.equal(back.matches[0]!.scores['cosine'], 0.75);
  // docarray's score form {name: {value}} is read too.
  const d = Document.fromJSON({ text: 'm', scores: { cosine: { value: 0.5 } } });
  assert.equal(d.scores['cosine'], 0.5);
});

test('fromJSON errors name the field', () => {
  const bad = (j: unknown, field: string | undefined, re: RegExp) =>
    assert.throws(() => Document.fromJSON(j, 'f.jsonl:3'), (e: unknown) => e instanceof DataError && e.field === field && re.test(e.message) && e.message.startsWith('f.jsonl:3'));
  bad({ modality: 'audio' }, 'modality', /'text' or 'image'/);
  bad({ text: 5 }, 'text', /must be a string/);
  bad({ blob: '!!' }, 'blob', /base64/);
  bad({ tensor: { shape: [2, 2], data: [1, 2, 3] } }, 'shape', /does not hold 3/);
  bad({ embedding: ['a'] }, 'embedding', /numbers/);
  bad([1], undefined, /JSON object/);
  assert.throws(() => DocumentArray.fromJSON('{"a":1}'), /must be a JSON array/);
  assert.throws(() => DocumentArray.fromJSON('[{"chunks":[{"modality":"x"}]}]'), (e: unknown) => e instanceof DataError && /chunks\[0\]/.test(e.message));
});
