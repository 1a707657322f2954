// fit() on images given by http://127.0.0.1 URL and data: URI, as Finetuner's CSVs allow: the same
// weights and metrics as the same images as local files; a URL that answers 404 or serves no image,
// a data: URI that is no image, and an image that fails to decode in the worker thread are
// DataErrors naming the CSV, its row and the image field — or, with skipBadRows, skipped and counted.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { DataError, ImageError } from '../src/errors.js';
import type { ImageErrorKind } from '../src/errors.js';
import { ParamStore } from '../src/runtime/params.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';
import { dataUri, serveImages } from './image_server.js';

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
let shapes: { dir: string; csv: string; captions: string[] };
const bytes: Uint8Array[] = [];
before(async () => {
  shapes = await makeShapesCsv(12);
  for (let i = 0; i < 12; i++) bytes.push(new Uint8Array(readFileSync(path.join(shapes.dir, `img${String(i).padStart(3, '0')}.png`))));
});

const opts = (trainData: string, extra: Partial<FitOptions> = {}): FitOptions => ({
  model: tiny!, tokenizer: bpe, trainData, epochs: 2, batchSize: 4, learningRate: 1e-3, numWorkers: 1, seed: 7,
  workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-run-')), ...extra,
});
const weights = async (dir: string) => (await ParamStore.fromSafetensors(path.join(dir, 'open_clip_model.safetensors'))).data;
const quote = (v: string) => `"${v}"`;

/** A CSV beside the images: a header, then one row per [image, caption]. */
function writeCsv(name: string, rows: [string, string][]): string {
  const file = path.join(shapes.dir, name);
  writeFileSync(file, ['image,text', ...rows.map(([img, caption]) => `${quote(img)},${caption}`)].join('\n') + '\n');
  return file;
}
const file = (i: number) => `img${String(i).padStart(3, '0')}.png`;
/** Image i as a file, with its caption. */
const pair = (i: number): [string, string] => [file(i), shapes.captions[i]!];

const dataErrorAt = (csv: string, row: number, kind: ImageErrorKind, detail: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
  assert.equal(e.file, csv);
  assert.equal(e.row, row);
  assert.equal(e.field, 'image');
  assert.ok(e.cause instanceof ImageError, 'the ImageError is the cause');
  assert.equal(e.cause.kind, kind);
  assert.match(e.message, detail);
  return true;
};

test('a CSV of http://127.0.0.1 URLs and data: URIs trains to the same weights and metrics as the same images as files', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const srv = await serveImages(t, Object.fromEntries(bytes.map((b, i) => [`/img/${i}.png`, b])));
  // Rows cycle through a relative path, a URL and a data: URI.
  const mixed = writeCsv('mixed.csv', bytes.map((b, i) => [i % 3 === 0 ? file(i) : i % 3 === 1 ? `${srv.base}/img/${i}.png` : dataUri(b), shapes.captions[i]!]));
  const evalCb = (csv: string) => [{ type: 'EvaluationCallback' as const, queryData: csv, indexData: csv, limit: 5 }];
  const local = await fit(opts(shapes.csv, { callbacks: evalCb(shapes.csv) }));
  const remote = await fit(opts(mixed, { callbacks: evalCb(mixed) }));
  assert.equal(remote.steps, 6);
  assert.deepEqual(await weights(remote.artifactDir), await weights(local.artifactDir), 'bit-identical weights');
  assert.deepEqual(remote.history, local.history, 'the same losses and retrieval metrics, zero-shot and per epoch');
  assert.ok(Object.keys(remote.history[0]!.metrics).length > 0);
  // Each URL was read once for the training set and once for the evaluation set, never per epoch.
  for (let i = 1; i < 12; i += 3) assert.equal(srv.hits.get(`/img/${i}.png`), 2, `/img/${i}.png`);
});

test('a 404, a non-image URL, a data: URI that is no image: DataErrors naming the row before any step; skipBadRows skips and counts them', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const srv = await serveImages(t, { '/ok.png': bytes[0]!, '/notes.txt': 'plain text' });
  const good = bytes.map((_, i) => pair(i));
  const notImage = dataUri(new TextEncoder().encode('not a picture'), 'image/png');
  const cases: [string, string, ImageErrorKind, RegExp][] = [
    ['gone.csv', `${srv.base}/gone.png`, 'missing', /HTTP 404/],
    ['text.csv', `${srv.base}/notes.txt`, 'unsupported', /not a PNG, JPEG, WebP or GIF/],
    ['data.csv', notImage, 'unsupported', /the data: URI says image\/png/],
  ];
  for (const [name, bad, kind, detail] of cases) {
    const csv = writeCsv(name, [...good.slice(0, 5), [bad, 'a bad one'], ...good.slice(5)]);
    let stepped = false;
    await assert.rejects(fit(opts(csv), { progress: () => (stepped = true) }), dataErrorAt(csv, 7, kind, detail));
    assert.equal(stepped, false, 'no training step ran');
  }
  // All three in one file, skipped: the same weights as the clean file (the good rows, in order).
  const dirty = writeCsv('dirty.csv', [good[0]!, [`${srv.base}/gone.png`, 'gone'], ...good.slice(1, 6), [`${srv.base}/notes.txt`, 'text'], ...good.slice(6), [notImage, 'no picture']]);
  const logs: string[] = [];
  const skipped = await fit(opts(dirty, { skipBadRows: true }), { log: (_l, m) => logs.push(m) });
  const clean = await fit(opts(shapes.csv));
  assert.ok(logs.includes(`skipped 3 bad row(s) of ${dirty}`), logs.join('\n'));
  assert.equal(skipped.steps, 6);
  assert.deepEqual(await weights(skipped.artifactDir), await weights(clean.artifactDir));
});

test('an image that passes the magic-byte check but fails to decode in the worker names its CSV row', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const broken = new Uint8Array(64);
  broken.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]); // PNG signature, no IHDR chunk
  const csv = writeCsv('broken.csv', [...bytes.slice(0, 9).map((_, i) => pair(i)), [dataUri(broken), 'broken'], pair(10), pair(11)]);
  await assert.rejects(fit(opts(csv, { epochs: 1 })), dataErrorAt(csv, 11, 'corrupt', /PNG without an IHDR chunk/));
});
