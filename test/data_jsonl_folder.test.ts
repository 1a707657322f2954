import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DataError } from '../src/errors.js';
import { LABEL_TAG, loadFolder, loadJsonl, pairImage, pairText } from '../src/data/index.js';
import { png, tempDir, writeFiles } from './data_helpers.js';

const line = (o: unknown) => JSON.stringify(o);

async function rejectsAtLine(file: string, lineNo: number, field: string | undefined, re: RegExp): Promise<void> {
  await assert.rejects(loadJsonl(file), (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.equal(e.file, file);
    assert.equal(e.row, lineNo);
    assert.equal(e.field, field);
    assert.ok(e.message.startsWith(`${file}, line ${lineNo}`), e.message);
    if (field) assert.ok(e.message.includes(`field '${field}'`), e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('jsonl: pairs with relative paths, explicit labels and tags; Document JSON lines; blank lines', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'img/a.png': await png(1, 2, 3), 'img/b.png': await png(4, 5, 6) });
  const body = [
    line({ text: 'a red square', image: 'img/a.png', label: 'red', tags: { source: 'hand' } }),
    '',
    line({ text: 'a remote one', image: 'https://example.com/r.jpg', label: 7 }),
    line({ id: 'doc9', chunks: [{ text: 'from a document', modality: 'text' }, { uri: 'img/b.png', modality: 'image' }], tags: { [LABEL_TAG]: 'blue' } }),
  ].join('\r\n');
  writeFiles(dir, { 'd.jsonl': body });
  const { docs, stats } = await loadJsonl(path.join(dir, 'd.jsonl'));
  assert.equal(stats.lines, 3);
  assert.deepEqual(
    docs.map((d) => [pairText(d), pairImage(d).uri, d.tags[LABEL_TAG]]),
    [
      ['a red square', path.join(dir, 'img/a.png'), 'red'],
      ['a remote one', 'https://example.com/r.jpg', 7],
      ['from a document', path.join(dir, 'img/b.png'), 'blue'],
    ],
  );
  assert.equal(docs[0]!.tags['source'], 'hand');
  assert.equal(docs[0]!.chunks[1]!.tags[LABEL_TAG], 'red');
  assert.equal(docs[2]!.id, 'doc9');
});

test('jsonl: without labels, shared captions/images share a label', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'a.png': await png(1, 1, 1), 'b.png': await png(2, 2, 2), 'c.png': await png(3, 3, 3) });
  writeFiles(dir, {
    'u.jsonl': [line({ text: 'x', image: 'a.png' }), line({ text: 'y', image: 'c.png' }), line({ text: 'x', image: 'b.png' })].join('\n') + '\n',
  });
  const { docs } = await loadJsonl(path.join(dir, 'u.jsonl'));
  assert.deepEqual(docs.map((d) => d.tags[LABEL_TAG]), [0, 1, 0]);
});

test('jsonl: bad lines are DataErrors naming file, line and field; skipBadRows lists them', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'a.png': await png(1, 1, 1) });
  const f = (name: string, body: string | Buffer) => {
    writeFiles(dir, { [name]: body });
    return path.join(dir, name);
  };
  const good = line({ text: 'ok', image: 'a.png' });
  await rejectsAtLine(f('j1.jsonl', `${good}\n\n{"text": "broken",\n`), 3, undefined, /invalid JSON/);
  await rejectsAtLine(f('j2.jsonl', `${good}\n${line({ text: 'no image' })}\n`), 2, 'image', /missing/);
  await rejectsAtLine(f('j3.jsonl', `${line({ text: 'gone', image: 'gone.png' })}\n`), 1, 'image', /image file not found: .*gone\.png/);
  await rejectsAtLine(f('j4.jsonl', `${good}\n${line({ text: '  ', image: 'a.png' })}\n`), 2, 'text', /empty caption/);
  await rejectsAtLine(f('j5.jsonl', `${good}\n[1,2]\n`), 2, undefined, /expected a JSON object, got array/);
  await rejectsAtLine(f('j6.jsonl', Buffer.concat([Buffer.from(`${good}\n{"text":"caf`), Buffer.from([0xe9]), Buffer.from('","image":"a.png"}\n')])), 2, undefined, /not valid UTF-8/);
  await rejectsAtLine(f('j7.jsonl', `${line({ chunks: [{ text: 't', modality: 'text' }, { uri: 'a.png', modality: 'sound' }] })}\n`), 1, 'chunks[1].modality', /'text' or 'image'/);
  await rejectsAtLine(f('j8.jsonl', `${line({ text: 't', image: 'a.png', label: [1] })}\n`), 1, 'label', /string or a number/);
  const { docs, stats } = await loadJsonl(f('j9.jsonl', `${good}\nnot json\n${line({ text: 'x', image: 'gone.png' })}\n${good}\n`), { skipBadRows: true });
  assert.equal(docs.length, 2);
  assert.deepEqual(stats.skipped.map((s) => [s.row, s.field]), [[2, undefined], [3, 'image']]);
});

test('folder: images with same-name .txt captions, recursive, sorted; uncaptioned listed; hidden ignored', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, {
    'b.png': await png(1, 0, 0),
    'b.txt': 'a red square\n',
    'a.JPG': await png(0, 1, 0),
    'a.txt': '\uFEFFa green square',
    'nocap.webp': await png(0, 0, 1),
    'notes.txt': 'not a caption',
    'sub/c.gif': await png(9, 9, 9),
    'sub/c.txt': 'a red square',
    'sub/deeper/d.jpeg': await png(8, 8, 8),
    'sub/deeper/d.txt': 'a grey square',
    '.hidden/e.png': await png(7, 7, 7),
    '.hidden/e.txt': 'hidden',
  });
  const { docs, stats } = await loadFolder(dir);
  assert.deepEqual(
    docs.map((d) => [pairText(d), path.relative(dir, pairImage(d).uri!), d.tags[LABEL_TAG]]),
    [
      ['a green square', 'a.JPG', 0],
      ['a red square', 'b.png', 1],
      ['a red square', 'sub/c.gif', 1],
      ['a grey square', 'sub/deeper/d.jpeg', 2],
    ],
  );
  assert.deepEqual(stats.uncaptioned, ['nocap.webp']);
  assert.equal(stats.images, 5);
  const flat = await loadFolder(dir, { recursive: false });
  assert.deepEqual(flat.docs.map(pairText), ['a green square', 'a red square']);
});

test('folder: an empty or non-UTF-8 caption is a DataError naming the caption file', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'x.png': await png(1, 1, 1), 'x.txt': '   \n', 'y.png': await png(2, 2, 2), 'y.txt': Buffer.from([0x63, 0x61, 0x66, 0xe9]) });
  await assert.rejects(loadFolder(dir), (e: unknown) => e instanceof DataError && e.file === path.join(dir, 'x.txt') && e.field === 'text' && /empty caption for image x\.png/.test(e.message));
  const { docs, stats } = await loadFolder(dir, { skipBadRows: true });
  assert.equal(docs.length, 0);
  assert.deepEqual(stats.skipped.map((s) => [s.row, s.field]), [[1, 'x.txt'], [2, 'y.txt']]);
  assert.match(stats.skipped[1]!.reason, /not valid UTF-8/);
  await assert.rejects(loadFolder(path.join(dir, 'nope')), (e: unknown) => e instanceof DataError && e.message.includes('nope'));
});
