// The one image-source resolver (src/data/image_source.ts): file paths relative to their list,
// file://, http(s) from a 127.0.0.1 server and data: URIs give the same bytes; every failure is an
// ImageError naming the source with its kind; the server's stricter policy as options. And an
// ImageError raised in an image worker thread arrives as an ImageError with its kind and file.

import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { readImageSource, sniffImageType } from '../src/data/index.js';
import { ImageError } from '../src/errors.js';
import type { ImageErrorKind } from '../src/errors.js';
import { ImagePool } from '../src/train/image_pool.js';
import { png, tempDir } from './data_helpers.js';
import { dataUri, serveImages } from './image_server.js';

const fails = (kind: ImageErrorKind, file: string | RegExp, detail: RegExp) => (e: unknown) => {
  assert.ok(e instanceof ImageError, `expected an ImageError, got ${String(e)}`);
  assert.equal(e.kind, kind, e.message);
  if (typeof file === 'string') assert.equal(e.file, file);
  else assert.match(e.file, file);
  assert.match(e.detail, detail);
  return true;
};

test('paths (relative to the list’s folder), file://, http(s) and data: URIs give the same image bytes', async (t) => {
  const dir = tempDir(t);
  const bytes = new Uint8Array(await png(200, 10, 10));
  mkdirSync(path.join(dir, 'imgs'));
  writeFileSync(path.join(dir, 'imgs', 'red.png'), bytes);
  const srv = await serveImages(t, { '/red.png': bytes });
  for (const [uri, kind] of [
    ['imgs/red.png', 'file'],
    [path.join(dir, 'imgs', 'red.png'), 'file'],
    [pathToFileURL(path.join(dir, 'imgs', 'red.png')).href, 'file'],
    [`${srv.base}/red.png`, 'http'],
    [dataUri(bytes), 'data'],
  ] as const) {
    const r = await readImageSource(uri, { baseDir: dir });
    assert.deepEqual(r.bytes, bytes, uri);
    assert.equal(r.type, 'png');
    assert.equal(r.kind, kind);
  }
  assert.equal(srv.hits.get('/red.png'), 1);
  assert.equal(sniffImageType(bytes), 'png');
});

test('failures are ImageErrors naming the source: 404, a non-image URL, a data: URI that is no image, bad base64, unknown schemes', async (t) => {
  const dir = tempDir(t);
  const srv = await serveImages(t, { '/notes.txt': 'just some text, no image', '/empty.png': new Uint8Array(0) });
  await assert.rejects(readImageSource(`${srv.base}/gone.png`), fails('missing', `${srv.base}/gone.png`, /HTTP 404/));
  await assert.rejects(readImageSource(`${srv.base}/notes.txt`), fails('unsupported', `${srv.base}/notes.txt`, /not a PNG, JPEG, WebP or GIF/));
  await assert.rejects(readImageSource(`${srv.base}/empty.png`), fails('empty', `${srv.base}/empty.png`, /zero bytes/));
  const text = dataUri(new TextEncoder().encode('hello'), 'image/png');
  await assert.rejects(readImageSource(text), fails('unsupported', text, /not a PNG.*the data: URI says image\/png/));
  await assert.rejects(readImageSource('data:image/png;base64,@@@'), fails('corrupt', 'data:image/png;base64,@@@', /not base64/));
  await assert.rejects(readImageSource('s3://bucket/a.png'), fails('refused', 's3://bucket/a.png', /unknown URI scheme/));
  await assert.rejects(readImageSource('nope.png', { baseDir: dir }), fails('missing', 'nope.png', /no such file/));
  // A long data: URI is named by its start, not pasted whole into the message.
  const long = dataUri(new Uint8Array(3000).fill(65), 'image/png');
  await assert.rejects(readImageSource(long), (e: unknown) => e instanceof ImageError && e.file.length < 120 && e.file.startsWith('data:image/png;base64,QUFB') && e.message.length < 300);
  await assert.rejects(readImageSource(dataUri(await png(1, 2, 3)), { maxBytes: 10 }), fails('too-large', /^data:image\/png/, /the limit is 10/));
});

test('the server’s policy as options: no remote fetches, no local files, or local files only inside a root (symlinks resolved)', async (t) => {
  const dir = tempDir(t);
  const bytes = new Uint8Array(await png(0, 200, 0));
  const root = path.join(dir, 'root');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  writeFileSync(path.join(root, 'sub', 'a.png'), bytes);
  writeFileSync(path.join(dir, 'outside.png'), bytes);
  symlinkSync(path.join(dir, 'outside.png'), path.join(root, 'link.png'));
  const srv = await serveImages(t, { '/a.png': bytes });
  await assert.rejects(readImageSource(`${srv.base}/a.png`, { remote: false }), fails('refused', `${srv.base}/a.png`, /not fetched/));
  assert.equal(srv.hits.get('/a.png'), undefined, 'no request was made');
  await assert.rejects(readImageSource(path.join(root, 'sub', 'a.png'), { local: false }), fails('refused', path.join(root, 'sub', 'a.png'), /local files/));
  const inRoot = { local: { root } };
  assert.deepEqual((await readImageSource('sub/a.png', inRoot)).bytes, bytes);
  assert.deepEqual((await readImageSource(pathToFileURL(path.join(root, 'sub', 'a.png')).href, inRoot)).bytes, bytes);
  for (const evil of ['../outside.png', 'link.png', path.join(dir, 'outside.png'), 'sub/../../outside.png'])
    await assert.rejects(readImageSource(evil, inRoot), fails('refused', evil, /outside the allowed folder/));
  await assert.rejects(readImageSource('sub/none.png', inRoot), fails('missing', 'sub/none.png', /no such file under the allowed folder/));
  // data: URIs are always read.
  assert.deepEqual((await readImageSource(dataUri(bytes), { local: false, remote: false })).bytes, bytes);
});

test('an ImageError raised in an image worker thread keeps its class, kind, file and detail', async (t) => {
  const pool = new ImagePool(1);
  t.after(() => pool.close());
  const good = new Uint8Array(await png(9, 9, 9));
  const broken = new Uint8Array(64);
  broken.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]); // PNG magic, no IHDR
  const opts = { size: 8 };
  const px = await pool.preprocess([good, good], ['a', 'b'], opts);
  assert.equal(px.length, 2 * 3 * 8 * 8);
  await assert.rejects(pool.preprocess([good, broken], ['good.png', 'row 7 of pairs.csv'], opts), fails('corrupt', 'row 7 of pairs.csv', /IHDR/));
  await assert.rejects(pool.preprocess(['/nonexistent/x.png'], ['/nonexistent/x.png'], opts), fails('missing', '/nonexistent/x.png', /no such file/));
  await assert.rejects(pool.preprocess([dataUri(new TextEncoder().encode('<svg/>'))], ['svg'], opts), fails('unsupported', /^data:image\/png/, /not a PNG/));
});
