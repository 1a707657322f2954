// Evaluation data as Finetuner's tutorial has it: text query Documents and image index Documents,
// each labelled (tags.finetuner_label), as JSONL Documents, {"text"|"image", "label"} lines, CSVs
// with a label column and DocumentArrays — through `clipfit eval`, evaluateModel and the
// EvaluationCallback (in fit() and on its own). Every form gives the metrics computed by hand from
// the tiny CLIP's embeddings; index images come as files, http://127.0.0.1 URLs and data: URIs.
// Bad rows are DataErrors naming file, line and field, or skipped and counted with --skip-bad-rows.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { Command } from 'commander';
import { registerEvalCommands } from '../src/app/cli/commands_eval.js';
import { Document, DocumentArray, LABEL_TAG } from '../src/data/index.js';
import { DataError, ImageError } from '../src/errors.js';
import type { ImageErrorKind } from '../src/errors.js';
import { evaluateRetrieval } from '../src/eval/evaluate.js';
import { evaluateModel } from '../src/inference/evaluate_model.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { EvaluationCallback } from '../src/train/callbacks.js';
import { fit } from '../src/train/fit.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';
import { dataUri, serveImages } from './image_server.js';

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-eval-labeled-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let shapes: { dir: string; csv: string; captions: string[] };
let files: string[] = [];
let labels: string[] = [];
/** The metrics computed by hand: captions against images, relevant when the colours match. */
let expected: Record<string, number> = {};

async function cli(...args: string[]): Promise<string[]> {
  const out: string[] = [];
  const program = new Command().name('clipfit').exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerEvalCommands(program, (line) => out.push(...line.split('\n')));
  await program.parseAsync(['node', 'clipfit', 'eval', '--model', tiny!, '--tokenizer', bpe, '--limit', '5', ...args]);
  return out;
}
const json = async (...args: string[]) => JSON.parse((await cli(...args, '--json')).join('\n')) as Record<string, number>;

function same(got: Record<string, number>, what: string): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort(), what);
  for (const k of Object.keys(expected)) assert.ok(Math.abs(got[k]! - expected[k]!) < 1e-6, `${what} ${k}: ${got[k]} vs ${expected[k]}`);
}

const write = (name: string, lines: string[]): string => {
  const f = path.join(tmp, name);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
};
const jsonl = (name: string, objs: unknown[]) => write(name, objs.map((o) => JSON.stringify(o)));
const queryDoc = (i: number) => ({ id: `q${i}`, text: shapes.captions[i], tags: { [LABEL_TAG]: labels[i] } });

before(async () => {
  if (!tiny) return;
  shapes = await makeShapesCsv(12);
  files = shapes.captions.map((_, i) => path.join(shapes.dir, `img${String(i).padStart(3, '0')}.png`));
  labels = shapes.captions.map((c) => c.split(' ')[1]!); // 'a red square' → red: two images per colour
  const m = await ClipModel.load(tiny, { tokenizer: bpe });
  const q = await m.encodeTexts(shapes.captions);
  const x = await m.encodeImages(files);
  await m.release();
  expected = evaluateRetrieval({ queryEmbeddings: q.data, queryLabels: labels, indexEmbeddings: x.data, indexLabels: labels, limit: 5, prefix: 'clip-text-to-clip-vision' });
});

/** Index Documents whose images are files, http://127.0.0.1 URLs and data: URIs in turn. */
async function indexDocs(t: TestContext): Promise<{ id: string; uri: string; modality: 'image'; tags: Record<string, string> }[]> {
  const srv = await serveImages(t, Object.fromEntries(files.map((f, i) => [`/${i}.png`, new Uint8Array(readFileSync(f))])));
  return files.map((f, i) => ({
    id: `x${i}`,
    uri: i % 3 === 0 ? path.relative(tmp, f) : i % 3 === 1 ? `${srv.base}/${i}.png` : dataUri(readFileSync(f)),
    modality: 'image' as const,
    tags: { [LABEL_TAG]: labels[i]! },
  }));
}

test('clipfit eval on text query and image index Documents (JSONL, label lines, CSV with a label column) and evaluateModel on DocumentArrays give the metrics computed by hand', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const index = await indexDocs(t);
  const queries = jsonl('queries.jsonl', shapes.captions.map((_, i) => queryDoc(i)));
  const indexFile = jsonl('index.jsonl', index);
  same(await json('--query-data', queries, '--index-data', indexFile), 'JSONL Documents');
  const text = await cli('--query-data', queries, '--index-data', indexFile);
  assert.equal(text[0], `${tiny}: 12 caption queries against 12 images (limit 5, cosine)`);

  // {"text", "label"} and {"image", "label"} lines.
  const q2 = jsonl('queries2.jsonl', shapes.captions.map((c, i) => ({ text: c, label: labels[i] })));
  const x2 = jsonl('index2.jsonl', index.map((d) => ({ image: d.uri, label: d.tags[LABEL_TAG] })));
  same(await json('--query-data', q2, '--index-data', x2), 'label lines');

  // CSVs with a label column; the header says which column is the label and what the items are.
  const q3 = write('queries.csv', ['text,label', ...shapes.captions.map((c, i) => `${c},${labels[i]}`)]);
  const x3 = write('index.csv', ['label,image', ...index.map((d) => `${d.tags[LABEL_TAG]},"${d.uri}"`)]);
  same(await json('--query-data', q3, '--index-data', x3), 'CSV with a label column');

  // DocumentArrays from TypeScript; a label given as a number matches the same label as a string.
  const qa = new DocumentArray(shapes.captions.map((c, i) => new Document({ text: c, tags: { [LABEL_TAG]: labels[i] } })));
  const xa = new DocumentArray(files.map((f, i) => new Document({ uri: f, modality: 'image', tags: { [LABEL_TAG]: labels[i] } })));
  const r = await evaluateModel({ model: tiny, tokenizer: bpe, queryData: qa, indexData: xa, limit: 5 });
  same(r.metrics, 'DocumentArrays');
  assert.deepEqual([r.queries, r.index, r.skipped.query.length, r.skipped.index.length], [12, 12, 0, 0]);
  const numeric = (l: string) => ['red', 'green', 'blue', 'yellow', 'purple', 'orange'].indexOf(l);
  qa.forEach((d, i) => (d.tags[LABEL_TAG] = numeric(labels[i]!)));
  xa.forEach((d, i) => (d.tags[LABEL_TAG] = String(numeric(labels[i]!))));
  same((await evaluateModel({ model: tiny, tokenizer: bpe, queryData: qa, indexData: xa, limit: 5 })).metrics, 'numeric and string labels');
});

test('the EvaluationCallback takes the same data: labelled files in fit() (its zero-shot row), DocumentArrays on its own', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const queries = jsonl('cb-queries.jsonl', shapes.captions.map((_, i) => queryDoc(i)));
  const index = jsonl('cb-index.jsonl', await indexDocs(t));
  const r = await fit({
    model: tiny, tokenizer: bpe, trainData: shapes.csv, epochs: 1, batchSize: 6, learningRate: 1e-3, numWorkers: 1, seed: 1,
    workDir: path.join(tmp, 'run'), callbacks: [{ type: 'EvaluationCallback', queryData: queries, indexData: index, limit: 5 }],
  });
  same(r.history[0]!.metrics, 'fit() zero-shot');
  // After an epoch the callback evaluates the trained weights: what clipfit eval says of the artifact.
  const epoch1 = await evaluateModel({ model: r.artifactDir, queryData: queries, indexData: index, limit: 5 });
  for (const [k, v] of Object.entries(epoch1.metrics)) assert.ok(Math.abs(r.history[1]!.metrics[k]! - v) < 1e-6, k);

  const cb = new EvaluationCallback(
    new DocumentArray(shapes.captions.map((c, i) => new Document({ text: c, tags: { [LABEL_TAG]: labels[i] } }))),
    // As a detached run receives them: Document JSON, images as blobs.
    new DocumentArray(files.map((f, i) => new Document({ blob: readFileSync(f), tags: { [LABEL_TAG]: labels[i] } }))).toJSON(),
    { limit: 5 },
  );
  const model = await ClipModel.load(tiny, { tokenizer: bpe });
  t.after(() => model.release());
  same(await cb.evaluate({ model, pretrained: model.params.clone(), workDir: tmp, log: () => {}, stop: false }), 'EvaluationCallback on DocumentArrays');
});

const rowError = (file: string, line: number, field: string, detail: RegExp, kind?: ImageErrorKind) => (e: unknown) => {
  assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
  assert.deepEqual([e.file, e.row, e.field], [file, line, field], e.message);
  assert.match(e.message, detail);
  if (kind) {
    assert.ok(e.cause instanceof ImageError);
    assert.equal(e.cause.kind, kind);
  }
  return true;
};

test('bad rows: a query without a label, an index Document without an image, a 404, a non-image URL, a data: URI that is no image; --skip-bad-rows skips and counts them', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const srv = await serveImages(t, { '/notes.txt': 'not an image' });
  const good = await indexDocs(t);
  const queries = jsonl('q-good.jsonl', shapes.captions.map((_, i) => queryDoc(i)));
  const index = jsonl('x-good.jsonl', good);

  const unlabeled = jsonl('q-nolabel.jsonl', [queryDoc(0), queryDoc(1), { id: 'q2', text: shapes.captions[2] }, ...shapes.captions.slice(3).map((_, i) => queryDoc(i + 3))]);
  await assert.rejects(cli('--query-data', unlabeled, '--index-data', index), rowError(unlabeled, 3, `tags.${LABEL_TAG}`, /no label: query documents that are not text–image pairs/));
  const unlabeledCsv = write('q-nolabel.csv', ['text,label', `${shapes.captions[0]},red`, `${shapes.captions[1]},`]);
  await assert.rejects(cli('--query-data', unlabeledCsv, '--index-data', index), rowError(unlabeledCsv, 3, 'label', /empty label/));
  // Without a header a text,label row reads as a pair with no image; the error says what is missing.
  const headerless = write('q-headerless.csv', [`${shapes.captions[0]},red`]);
  await assert.rejects(cli('--query-data', headerless, '--index-data', index), rowError(headerless, 1, 'image', /needs a header naming its label column, e.g. text,label/));

  const bad: [string, unknown, string, RegExp, ImageErrorKind?][] = [
    ['x-noimage.jsonl', { id: 'bad', text: 'a caption, no image', tags: { [LABEL_TAG]: 'red' } }, 'uri', /index document has no image for clip-vision/],
    ['x-404.jsonl', { uri: `${srv.base}/gone.png`, tags: { [LABEL_TAG]: 'red' } }, 'uri', /HTTP 404/, 'missing'],
    ['x-text.jsonl', { uri: `${srv.base}/notes.txt`, tags: { [LABEL_TAG]: 'red' } }, 'uri', /not a PNG, JPEG, WebP or GIF/, 'unsupported'],
    ['x-data.jsonl', { image: dataUri(new TextEncoder().encode('hello')), label: 'red' }, 'image', /the data: URI says image\/png/, 'unsupported'],
  ];
  for (const [name, line, field, detail, kind] of bad) {
    const f = jsonl(name, [...good.slice(0, 4), line, ...good.slice(4)]);
    await assert.rejects(cli('--query-data', queries, '--index-data', f), rowError(f, 5, field, detail, kind));
  }

  // All of them at once, skipped: the metrics of the good rows, and each skipped row listed.
  const dirtyIndex = jsonl('x-dirty.jsonl', [good[0], ...bad.map(([, line]) => line), ...good.slice(1)]);
  const out = await cli('--query-data', unlabeled, '--index-data', dirtyIndex, '--skip-bad-rows');
  assert.match(out.find((l) => l.startsWith(tiny!))!, /: 11 caption queries against 12 images .*; skipped 5 bad row\(s\)$/);
  const skippedLines = out.filter((l) => l.startsWith('skipped '));
  assert.deepEqual(skippedLines.map((l) => /^skipped (\S+), line (\d+), field '([^']+)'/.exec(l)!.slice(1)), [
    [unlabeled, '3', `tags.${LABEL_TAG}`], [dirtyIndex, '2', 'uri'], [dirtyIndex, '3', 'uri'], [dirtyIndex, '4', 'uri'], [dirtyIndex, '5', 'image'],
  ]);
  const withoutQ2 = evaluateModel({ model: tiny, tokenizer: bpe, queryData: unlabeled, indexData: index, limit: 5, skipBadRows: true });
  const skippedRun = evaluateModel({ model: tiny, tokenizer: bpe, queryData: unlabeled, indexData: dirtyIndex, limit: 5, skipBadRows: true });
  assert.deepEqual((await skippedRun).metrics, (await withoutQ2).metrics, 'the bad index rows change nothing');
});
