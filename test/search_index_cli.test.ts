// `clipfit index add | search | info | rebuild | remove` through commander, in a temporary
// CLIPFIT_HOME, with randomly initialised tiny-test CLIP folders and PNGs drawn by sharp. The
// search scores are checked against cosines computed here from the model's own encode().

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { indexCli } from './index_cli.js';
import { ConfigError } from '../src/errors.js';
import { encode, getModel } from '../src/inference/index.js';
import { createModelFolder } from '../src/models/clip/weights/init.js';
import { makeShapesCsv } from './fit_data.js';
import { requireFixture } from './fixtures.js';

const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-index-cli-'));
process.env['CLIPFIT_HOME'] = home;
after(() => rmSync(home, { recursive: true, force: true }));

const cli = indexCli;

const bpe = requireFixture('bpe_simple_vocab_16e6.txt.gz');
let modelA = '', modelB = '';
let shapes: { dir: string; captions: string[] };
before(async () => {
  if (!bpe) return;
  modelA = path.join(home, 'model-a');
  modelB = path.join(home, 'model-b');
  await createModelFolder(modelA, 'tiny-test', { kind: 'bpe-gz', file: bpe }, 1);
  await createModelFolder(modelB, 'tiny-test', { kind: 'bpe-gz', file: bpe }, 2);
  shapes = await makeShapesCsv(5);
  writeFileSync(path.join(shapes.dir, 'notes.txt'), 'not an image');
});
after(() => shapes && rmSync(shapes.dir, { recursive: true, force: true }));

/** Cosine of the caption against each image, from encode() of `model`: the reference ranking. */
async function referenceRanking(model: string, caption: string, files: string[]): Promise<{ uri: string; score: number }[]> {
  const text = await getModel(model, { selectModel: 'clip-text' });
  const vision = await getModel(model, { selectModel: 'clip-vision' });
  const t = (await encode(text, [caption])).data;
  const im = (await encode(vision, files)).data;
  await text.release();
  await vision.release();
  const d = t.length;
  return files
    .map((uri, i) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += t[j]! * im[i * d + j]!;
      return { uri, score: s };
    })
    .sort((a, b) => b.score - a.score);
}

test('index add, search, info, remove and rebuild from the command line', async (t) => {
  if (!bpe) return t.skip('tokenizer fixture missing');
  const files = Array.from({ length: 5 }, (_, i) => path.join(shapes.dir, `img00${i}.png`));
  const added = await cli('index', 'add', '--index', 'shapes', '--model', modelA, shapes.dir);
  // The model id is the architecture's name and a fingerprint of the weights.
  const idA = /^added 5 image\(s\) to index shapes \(5 in all, model (tiny-test@[0-9a-f]{12})\)$/.exec(added[0]!)?.[1];
  assert.ok(idA, added[0]);
  // Adding the same files again upserts by absolute path.
  await cli('index', 'add', '--index', 'shapes', '--model', modelA, files[0]!, files[1]!);
  const info = JSON.parse((await cli('index', 'info', '--index', 'shapes', '--json')).join('\n'));
  assert.deepEqual([info.backend, info.dir, info.dim, info.size], ['folder', path.join(home, 'indexes', 'shapes'), 32, 5]);

  const hits = JSON.parse((await cli('index', 'search', '--index', 'shapes', '--model', modelA, 'a red square', '-k', '3', '--json')).join('\n'));
  const want = await referenceRanking(modelA, 'a red square', files);
  assert.deepEqual(hits.map((h: { rank: number }) => h.rank), [1, 2, 3]);
  assert.deepEqual(hits.map((h: { uri: string }) => h.uri), want.slice(0, 3).map((w) => w.uri));
  hits.forEach((h: { score: number }, i: number) => assert.ok(Math.abs(h.score - want[i]!.score) < 1e-4, `score ${i}: ${h.score} vs ${want[i]!.score}`));
  const text = await cli('index', 'search', '--index', 'shapes', '--model', modelA, 'a red square', '-k', '2');
  assert.equal(text.length, 2);
  assert.match(text[0]!, new RegExp(`^  1  -?\\d\\.\\d{4}  ${want[0]!.uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));

  // Another model's embeddings are not comparable: refused, with the way out.
  await assert.rejects(cli('index', 'search', '--index', 'shapes', '--model', modelB, 'a red square'), (e: unknown) => e instanceof ConfigError && /clipfit index rebuild --index shapes/.test(e.message));
  await assert.rejects(cli('index', 'add', '--index', 'shapes', '--model', modelB, files[0]!), (e: unknown) => e instanceof ConfigError && e.message.includes(idA));
  await assert.rejects(cli('index', 'add', '--index', 'shapes', '--model', modelA, path.join(shapes.dir, 'notes.txt')), (e: unknown) => e instanceof ConfigError && /not an image file/.test(e.message));
  await assert.rejects(cli('index', 'search', '--index', 'nope', '--model', modelA, 'x'), (e: unknown) => e instanceof ConfigError && /no index nope/.test(e.message));

  const rebuilt = await cli('index', 'rebuild', '--index', 'shapes', '--model', modelB);
  const ids = /^rebuilt index shapes: 5 image\(s\) re-encoded, model (tiny-test@\w+) -> (tiny-test@\w+)$/.exec(rebuilt[0]!);
  assert.ok(ids, rebuilt[0]);
  assert.equal(ids[1], idA);
  assert.notEqual(ids[2], idA);
  const hitsB = JSON.parse((await cli('index', 'search', '--index', 'shapes', '--model', modelB, 'a blue square', '--json')).join('\n'));
  const wantB = await referenceRanking(modelB, 'a blue square', files);
  assert.deepEqual(hitsB.map((h: { uri: string }) => h.uri), wantB.map((w) => w.uri));

  assert.match((await cli('index', 'remove', '--index', 'shapes', files[4]!))[0]!, /^removed 1 item\(s\) from index shapes \(4 left\)$/);
  assert.equal(JSON.parse((await cli('index', 'info', '--index', 'shapes', '--json')).join('\n')).size, 4);
});
