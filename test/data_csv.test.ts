import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DataError } from '../src/errors.js';
import { LABEL_TAG, loadCsv, looksLikeImage, pairImage, pairText } from '../src/data/index.js';
import type { Document } from '../src/data/index.js';
import { png, tempDir, writeFiles } from './data_helpers.js';

const summary = (docs: Iterable<Document>) => [...docs].map((d) => [pairText(d), pairImage(d).uri, d.tags[LABEL_TAG]]);

async function imagesIn(dir: string, names: string[]): Promise<void> {
  const files: Record<string, Buffer> = {};
  for (const [i, n] of names.entries()) files[n] = await png(40 * i, 100, 200);
  writeFiles(dir, files);
}

/** Assert loadCsv rejects with a DataError naming the file, the row and the field. */
async function rejectsAt(file: string, row: number, field: string, re: RegExp, opts = {}): Promise<void> {
  await assert.rejects(loadCsv(file, opts), (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.equal(e.file, file);
    assert.equal(e.row, row);
    assert.equal(e.field, field);
    assert.ok(e.message.includes(file) && e.message.includes(`row ${row}`) && e.message.includes(`field '${field}'`), e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('pairs: image and caption in either order, quoting (commas, newlines, ""), CRLF, BOM, header, relative paths', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['imgs/a.png', 'imgs/b.jpg', 'c.webp', 'd d.gif']);
  const csv =
    '\uFEFFimage,caption\r\n' +
    'imgs/a.png,"a dog, running"\r\n' +
    '"a cat on a ""mat""",imgs/b.jpg\r\n' +
    '"two\nlines",./c.webp\r\n' +
    '\r\n' +
    'd d.gif,   spaced caption  \r\n' +
    'https://example.com/x?id=1,a remote image\r\n' +
    '"data:image/png;base64,iVBORw0KGgo=",an inline image\r\n';
  writeFiles(dir, { 'train.csv': csv });
  const { docs, stats } = await loadCsv(path.join(dir, 'train.csv'));
  assert.deepEqual(stats.header, ['image', 'caption']);
  assert.equal(stats.delimiter, ',');
  assert.equal(stats.rows, 6);
  assert.equal(stats.docs, 6);
  assert.deepEqual(stats.skipped, []);
  assert.deepEqual(
    docs.map((d) => [pairText(d), pairImage(d).uri]),
    [
      ['a dog, running', path.join(dir, 'imgs/a.png')],
      ['a cat on a "mat"', path.join(dir, 'imgs/b.jpg')],
      ['two\nlines', path.join(dir, 'c.webp')],
      ['spaced caption', path.join(dir, 'd d.gif')],
      ['a remote image', 'https://example.com/x?id=1'],
      ['an inline image', 'data:image/png;base64,iVBORw0KGgo='],
    ],
  );
  assert.equal(docs[0]!.chunks[0]!.modality, 'text');
  assert.equal(docs[0]!.chunks[1]!.modality, 'image');
});

test('labels: rows sharing a caption or an image share finetuner_label (transitively); exact repeats are dropped', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png', 'b.png', 'c.png', 'd.png', 'e.png']);
  // Finetuner would give row 3 a new label (its first column was seen, but only via the image) and
  // drop row 4 (both values seen). Components here: {dog,a,b,puppy,d}, {cat,c}, {bird,e}.
  writeFiles(dir, {
    'l.csv': ['a dog,a.png', 'a dog,b.png', 'a puppy,b.png', 'a cat,c.png', 'a puppy,d.png', 'a dog,a.png', 'a bird,e.png', 'a cat,c.png'].join('\n'),
  });
  const { docs, stats } = await loadCsv(path.join(dir, 'l.csv'));
  assert.deepEqual(
    docs.map((d) => [pairText(d), path.basename(pairImage(d).uri!), d.tags[LABEL_TAG]]),
    [
      ['a dog', 'a.png', 0],
      ['a dog', 'b.png', 0],
      ['a puppy', 'b.png', 0],
      ['a cat', 'c.png', 1],
      ['a puppy', 'd.png', 0],
      ['a bird', 'e.png', 2],
    ],
  );
  assert.equal(stats.duplicates, 2);
  assert.equal(stats.labels, 3);
  assert.equal(stats.header, null);
  assert.equal(docs[3]!.chunks[0]!.tags[LABEL_TAG], 1); // chunks carry the label too
});

test('tab dialect is sniffed (captions with commas); an unusual header is detected', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png', 'b.png']);
  writeFiles(dir, { 't.tsv': 'photo\twords\na.png\tred, small, square\nb.png\tblue, big\n' });
  const { docs, stats } = await loadCsv(path.join(dir, 't.tsv'));
  assert.equal(stats.delimiter, '\t');
  assert.deepEqual(stats.header, ['photo', 'words']);
  assert.deepEqual(docs.map(pairText), ['red, small, square', 'blue, big']);
  // delimiter forced to ',' splits at the commas instead → wrong column count on row 2.
  await rejectsAt(path.join(dir, 't.tsv'), 1, 'columns', /expected 2 columns, found 1/, { delimiter: ',' });
});

test('hasHeader: false reads row 1 as data; hasHeader: true drops it', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png']);
  writeFiles(dir, { 'h.csv': 'image,text\na.png,a square\n' });
  await rejectsAt(path.join(dir, 'h.csv'), 1, 'image', /neither value is an image/, { hasHeader: false });
  writeFiles(dir, { 'h2.csv': 'a.png,first\na.png,second\n' });
  const { docs, stats } = await loadCsv(path.join(dir, 'h2.csv'), { hasHeader: true });
  assert.deepEqual(stats.header, ['a.png', 'first']);
  assert.deepEqual(docs.map(pairText), ['second']);
});

test('the image rule', (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'my cat.jpg': 'x' });
  assert.equal(looksLikeImage('cat.jpg', dir), true); // no whitespace: looks like a path
  assert.equal(looksLikeImage('photos/CAT.JPEG', dir), true);
  assert.equal(looksLikeImage('my cat.jpg', dir), true); // has spaces but exists
  assert.equal(looksLikeImage('a photo saved as cat.jpg', dir), false);
  assert.equal(looksLikeImage('http://h/x', dir), true);
  assert.equal(looksLikeImage('file:///x/y', dir), true);
  assert.equal(looksLikeImage('data:image/png;base64,AA==', dir), true);
  assert.equal(looksLikeImage('data:text/plain,hi', dir), false);
  assert.equal(looksLikeImage('Note: a cat', dir), false);
  assert.equal(looksLikeImage('cat.txt', dir), false);
});

test('both values look like images: the order the other rows use decides', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png', 'b.png', 'c.png']);
  writeFiles(dir, { 'o.csv': 'a.png,a red thing\nb.png,a blue thing\nc.png,c.png\n' });
  const { docs } = await loadCsv(path.join(dir, 'o.csv'));
  assert.deepEqual(docs.map((d) => [pairText(d), path.basename(pairImage(d).uri!)]).at(-1), ['c.png', 'c.png']);
  writeFiles(dir, { 'o2.csv': 'a.png,b.png\n' });
  await rejectsAt(path.join(dir, 'o2.csv'), 1, 'image', /both values look like images/);
});

test('a quoted "" caption is an intentionally empty caption; a bare empty field is missing', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png', 'b.png']);
  writeFiles(dir, { 'q.csv': 'image,text\na.png,"a cat"\n"b.png",""\n', 'r.csv': '"",a.png\n' });
  const { docs } = await loadCsv(path.join(dir, 'q.csv'));
  assert.deepEqual(docs.map((d) => [pairText(d), path.basename(pairImage(d).uri!)]), [['a cat', 'a.png'], ['', 'b.png']]);
  const r = await loadCsv(path.join(dir, 'r.csv'));
  assert.deepEqual(r.docs.map((d) => [pairText(d), path.basename(pairImage(d).uri!)]), [['', 'a.png']]);
  writeFiles(dir, { 'bare.csv': 'a.png,\n' });
  await rejectsAt(path.join(dir, 'bare.csv'), 1, 'text', /empty caption \(column 2\); write "" for an intentionally empty caption/);
});

test('bad rows throw DataErrors naming file, row and field', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png', 'b.png']);
  const f = (name: string, body: string | Uint8Array) => {
    writeFiles(dir, { [name]: body });
    return path.join(dir, name);
  };
  await rejectsAt(f('missing.csv', 'a.png,ok\nb.png,ok too\nnope.png,a caption\n'), 3, 'image', /image file not found: .*nope\.png/);
  const ok = await loadCsv(path.join(dir, 'missing.csv'), { checkImages: false });
  assert.equal(ok.docs.length, 3);
  await rejectsAt(f('empty.csv', 'a.png,ok\nb.png,  \n'), 2, 'text', /empty caption \(column 2\)/);
  await rejectsAt(f('empty2.csv', 'caption,\n'), 1, 'image', /empty image \(column 2\)/);
  await rejectsAt(f('cols.csv', 'a.png,ok\nb.png,one,two\n'), 2, 'columns', /expected 2 columns, found 3/);
  await rejectsAt(f('cols1.csv', 'a.png,ok\n\njust one value\n'), 3, 'columns', /expected 2 columns, found 1/);
  await rejectsAt(f('quote.csv', 'a.png,ok\nb.png,"never closed\n'), 2, 'columns', /unterminated quoted field \(the quote opens on line 2\)/);
  await rejectsAt(f('neither.csv', 'a.png,ok\nsome text,more text\n'), 2, 'image', /neither value is an image/);
  // café in Latin-1 (0xE9) on spreadsheet row 3, after a caption spanning two lines.
  const latin1 = Buffer.concat([Buffer.from('a.png,"line one\nline two"\nb.png,fine\nb.png,caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
  await rejectsAt(f('latin1.csv', latin1), 3, 'column 2', /not valid UTF-8 \(byte 0xE9 at file offset 46\)/);
});

test('skipBadRows: bad rows are skipped and listed, good rows kept', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png', 'b.png']);
  const body = Buffer.concat([
    Buffer.from('image,caption\na.png,good one\nmissing.png,gone\nb.png,\nb.png,x,y\nb.png,caf'),
    Buffer.from([0xe9]),
    Buffer.from('\nb.png,good two\n'),
  ]);
  writeFiles(dir, { 's.csv': body });
  const { docs, stats } = await loadCsv(path.join(dir, 's.csv'), { skipBadRows: true });
  assert.deepEqual(docs.map(pairText), ['good one', 'good two']);
  assert.equal(stats.rows, 6);
  assert.deepEqual(
    stats.skipped.map((s) => [s.row, s.field]),
    [
      [3, 'image'],
      [4, 'text'],
      [5, 'columns'],
      [6, 'column 2'],
    ],
  );
  assert.match(stats.skipped[0]!.reason, /not found/);
});

test('isLabeled: item + label columns; items are images or texts; label → tags.finetuner_label', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['apples/green.jpg', 'apples/red.jpg']);
  writeFiles(dir, {
    'lab.csv': 'apples/green.jpg, picture of apple\napples/red.jpg,picture of apple\nhttps://example.com/o.jpg,picture of orange\n"Hello, world!",greeting-english\n',
  });
  const { docs, stats } = await loadCsv(path.join(dir, 'lab.csv'), { isLabeled: true });
  assert.deepEqual(
    docs.map((d) => [d.modality, d.uri ?? d.text, d.tags[LABEL_TAG]]),
    [
      ['image', path.join(dir, 'apples/green.jpg'), 'picture of apple'],
      ['image', path.join(dir, 'apples/red.jpg'), 'picture of apple'],
      ['image', 'https://example.com/o.jpg', 'picture of orange'],
      ['text', 'Hello, world!', 'greeting-english'],
    ],
  );
  assert.equal(stats.labels, 3);
  writeFiles(dir, { 'lab2.csv': 'item,label\napples/red.jpg,\n' });
  await rejectsAt(path.join(dir, 'lab2.csv'), 2, 'label', /empty label/, { isLabeled: true });
  writeFiles(dir, { 'lab3.csv': 'apples/none.jpg,fruit\n' });
  await rejectsAt(path.join(dir, 'lab3.csv'), 1, 'item', /image file not found/, { isLabeled: true });
});

test('a file that cannot be read, or has no rows, is a DataError naming it', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'empty.csv': '\n\r\n' });
  await assert.rejects(loadCsv(path.join(dir, 'empty.csv')), (e: unknown) => e instanceof DataError && e.message === `${path.join(dir, 'empty.csv')}: the file has no rows`);
  await assert.rejects(loadCsv('/nonexistent/x.csv'), (e: unknown) => e instanceof DataError && e.message.includes('/nonexistent/x.csv'));
});

test('summary helper sanity: labels survive a header-less TSV', async (t) => {
  const dir = tempDir(t);
  await imagesIn(dir, ['a.png']);
  writeFiles(dir, { 'x.tsv': 'a.png\tone\n' });
  const { docs } = await loadCsv(path.join(dir, 'x.tsv'));
  assert.deepEqual(summary(docs), [['one', path.join(dir, 'a.png'), 0]]);
});
