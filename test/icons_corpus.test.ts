// The base model's pretraining corpus, built from the installed @iconify-json packages.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { DatasetError } from '../src/errors.js';
import { buildIconCorpus, isHeldOut } from '../src/app/datasets/icons/corpus.js';
import { BASE_ICON_SETS, captionOfIconName, readIconSet, readIconSetInfo } from '../src/app/datasets/icons/iconify.js';
import { loadCsv } from '../src/data/csv.js';

test('captions drop style words and numbering so drawings of one concept share a caption', () => {
  assert.equal(captionOfIconName('arrow-left-bold'), 'arrow left');
  assert.equal(captionOfIconName('heart-outline'), 'heart');
  assert.equal(captionOfIconName('heart-fill'), 'heart');
  assert.equal(captionOfIconName('bell-off'), 'bell off');
  assert.equal(captionOfIconName('abstract-001'), 'abstract');
  assert.equal(captionOfIconName('3d-glasses'), '3d glasses');
  assert.equal(captionOfIconName('filled'), '');
});

test('no emoji icon set is in the pretraining corpus', () => {
  for (const s of BASE_ICON_SETS) assert.ok(!/emoji|noto|twemoji|openmoji|fxemoji|emojione/.test(s), s);
});

test('reads a set with its licence: flat-color-icons is MIT by Icons8', () => {
  const info = readIconSetInfo('flat-color-icons');
  assert.equal(info.license, 'MIT');
  assert.equal(info.author, 'Icons8');
  const icons = readIconSet('flat-color-icons');
  assert.ok(icons.length > 300);
  const home = icons.find((i) => i.name === 'home')!;
  assert.match(home.svg, /^<svg [^>]*viewBox="0 0 48 48"/);
});

test('a missing icon package is a DatasetError that says what to install', () => {
  assert.throws(() => readIconSet('no-such-set'), (e: unknown) => e instanceof DatasetError && /npm install --save-dev @iconify-json\/no-such-set/.test(e.message));
});

test('builds a corpus: square PNGs on white, CSVs the loader reads, held-out split by caption', async () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'clipfit-icons-'));
  const c = await buildIconCorpus({ out, sets: ['flat-color-icons'], size: 32, heldOutPercent: 20 });
  assert.equal(c.pairs.train + c.pairs.heldOut + c.skipped.noCaption + c.skipped.renderFailed.length, readIconSet('flat-color-icons').length);
  assert.ok(c.pairs.heldOut > 30 && c.pairs.train > 200, JSON.stringify(c.pairs));
  const train = await loadCsv(c.train);
  const held = await loadCsv(c.heldOut);
  assert.equal(train.docs.length, c.pairs.train);
  const caps = (docs: typeof train.docs) => new Set([...docs].map((d) => [...d.chunks].find((x) => x.modality === 'text')!.text!));
  const heldCaps = caps(held.docs);
  for (const cap of caps(train.docs)) assert.ok(!heldCaps.has(cap), `caption '${cap}' straddles the split`);
  for (const cap of heldCaps) assert.ok(isHeldOut(cap, 20));
  const img = [...held.docs][0]!;
  const uri = [...img.chunks].find((x) => x.modality === 'image')!.uri!;
  const meta = await sharp(uri).metadata();
  assert.equal(meta.width, 32);
  assert.equal(meta.height, 32);
  // Corners are the white background.
  const { data, info } = await sharp(uri).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([...data.subarray(0, 3)], [255, 255, 255]);
  assert.equal(info.channels, 3);
  // A rerun reuses the images and writes the same CSVs.
  const before = readFileSync(c.train, 'utf8');
  const again = await buildIconCorpus({ out, sets: ['flat-color-icons'], size: 32, heldOutPercent: 20 });
  assert.equal(readFileSync(again.train, 'utf8'), before);
});
