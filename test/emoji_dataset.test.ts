// The emoji dataset builder against the packages' own data: emoji-datasource-google/-twitter 16,
// openmoji 17 and emojibase-data 17 (pinned devDependencies). Builds a small dataset (limit) into
// a temporary folder; the full-size check runs the join only.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import sharp from 'sharp';
import { registerDataCommands } from '../src/app/cli/commands_data.js';
import { loadCsv, loadJsonl, pairImage, pairText, pull, LABEL_TAG } from '../src/data/index.js';
import {
  buildEmojiDataset, findItem, groupKey, joinEmoji, loadEmojiEvalSet, resolveEmojiPackages, scoreEmojiEvalSet, splitOf,
} from '../src/app/datasets/emoji/index.js';
import type { EmojiJoin, EmojiManifest } from '../src/app/datasets/emoji/index.js';
import { MissingPackageError } from '../src/errors.js';
import { evaluateModel } from '../src/inference/evaluate_model.js';
import { createModelFolder } from '../src/models/clip/weights/init.js';
import { FIXTURES, REPO_ROOT, requireFixture } from './fixtures.js';

const NM = path.join(REPO_ROOT, 'node_modules');
const json = <T>(...p: string[]): T => JSON.parse(readFileSync(path.join(NM, ...p), 'utf8')) as T;
type Emojibase = { hexcode: string; label: string; tags?: string[] }[];
type Datasource = { unified: string; category: string; skin_variations?: Record<string, { unified: string }> }[];
const stripFe0f = (h: string) => h.split('-').filter((c) => c !== 'FE0F').join('-');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-emoji-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const out = path.join(tmp, 'out');
let full: EmojiJoin;
let m: EmojiManifest;
before(async () => {
  full = await joinEmoji(await resolveEmojiPackages());
  m = await buildEmojiDataset({ out, limit: 60 });
});

test('full join: 1,906 base emoji (270 flags) exist in all three styles, as PACKAGES.md counts', () => {
  assert.equal(full.stats.baseEmoji, 1906);
  assert.equal(full.stats.baseInAllStyles, 1906);
  assert.equal(full.stats.flagsInAllStyles, 270);
  assert.deepEqual(full.stats.unlabelled, []);
  // Grouping merges gender variants (man/woman/person …): fewer items than base emoji, each label once.
  assert.ok(full.items.length > 1600 && full.items.length < 1906, `${full.items.length} items`);
  assert.equal(new Set(full.items.map((i) => i.label)).size, full.items.length);
  assert.equal(new Set(full.items.map((i) => i.key)).size, full.items.length);
});

test('😀 has key 1f600 and its emojibase label "grinning face"', () => {
  const en = json<Emojibase>('emojibase-data', 'en', 'data.json');
  const it = full.items.find((i) => i.emoji === '😀')!;
  assert.equal(it.key, '1f600');
  assert.equal(it.label, 'grinning face');
  assert.equal(it.label, en.find((e) => e.hexcode === '1F600')!.label);
  assert.deepEqual(it.tags, en.find((e) => e.hexcode === '1F600')!.tags);
  assert.equal(m.items['1f600']!.label, 'grinning face');
});

test('skin-tone and gender variants group under the neutral emoji', () => {
  const thumbs = findItem(full.items, '1F44D-1F3FD')!; // 👍🏽
  assert.equal(thumbs.key, '1f44d');
  assert.equal(thumbs.label, 'thumbs up');
  assert.ok(thumbs.variants.includes('1F44D-1F3FD'));
  const cook = findItem(full.items, '1F469-1F3FE-200D-1F373')!; // woman cook, medium-dark skin
  assert.equal(cook.key, '1f9d1-200d-1f373');
  assert.equal(cook.label, 'cook');
  assert.deepEqual(new Set(cook.members), new Set(['1F9D1-200D-1F373', '1F468-200D-1F373', '1F469-200D-1F373']));
  const facepalm = findItem(full.items, '1F926-200D-2640-FE0F')!; // woman facepalming
  assert.equal(facepalm.key, '1f926');
  // FE0F is ignored: the package spells 2764 with it, the key does not.
  assert.equal(findItem(full.items, '2764-FE0F')!.key, '2764');

  // Every base emoji and skin-tone form of emoji-datasource lands in exactly one item.
  const owner = new Map<string, string>();
  for (const it of full.items) for (const v of it.variants) {
    assert.ok(!owner.has(v), `${v} in ${owner.get(v)} and ${it.key}`);
    owner.set(v, it.key);
  }
  for (const e of json<Datasource>('emoji-datasource-google', 'emoji.json')) {
    if (e.category === 'Component') continue;
    assert.ok(owner.has(stripFe0f(e.unified)), e.unified);
    for (const s of Object.values(e.skin_variations ?? {})) assert.equal(owner.get(stripFe0f(s.unified)), owner.get(stripFe0f(e.unified)), s.unified);
  }
});

test('split: sha256(key) bucket, deterministic, ~80/20 over all items', () => {
  const a = full.items.map((i) => splitOf(i.key));
  const b = full.items.map((i) => splitOf(i.key));
  assert.deepEqual(a, b);
  const train = a.filter((s) => s === 'train').length / a.length;
  assert.ok(train > 0.76 && train < 0.84, `train fraction ${train}`);
  for (const it of full.items.slice(0, 50)) {
    const u = createHash('sha256').update(it.key).digest().readUInt32BE(0) % 100;
    assert.equal(splitOf(it.key), u < 80 ? 'train' : 'eval', it.key);
  }
  // Grouped variants share the key, hence the split; groupKey is the same for all of them.
  assert.equal(groupKey('1F468-1F3FB-200D-1F373'), groupKey('1F9D1-200D-1F373'));
});

test('built files: no item straddles the split, counts match the CSV/JSONL rows', async () => {
  assert.equal(m.counts.items, 60);
  assert.equal(m.counts.train + m.counts.eval, 60);
  assert.deepEqual(new Set([...m.splits.train, ...m.splits.eval]).size, 60);
  const trainCsv = await loadCsv(path.join(out, 'train.csv'));
  const inDomain = await loadCsv(path.join(out, 'eval-in-domain.csv'));
  const shifted = await loadCsv(path.join(out, 'eval-shifted.csv'));
  assert.equal(trainCsv.docs.length, m.counts.rows.train);
  assert.equal(trainCsv.docs.length, 2 * m.counts.train);
  assert.equal(inDomain.docs.length, m.counts.rows['eval-in-domain']);
  assert.equal(shifted.docs.length, m.counts.rows['eval-shifted']);
  assert.equal(shifted.docs.length, m.counts.eval);
  // Finetuner's CSV rules link the two styles of an item through the shared caption: one label each.
  assert.equal(trainCsv.stats.labels, m.counts.train);
  assert.equal(inDomain.stats.labels, m.counts.eval);

  const keysOf = async (f: string) => new Set((await loadJsonl(path.join(out, f))).docs.map((d) => String(d.tags[LABEL_TAG])));
  const trainKeys = await keysOf('train.jsonl');
  const evalKeys = new Set([...(await keysOf('eval-in-domain.jsonl')), ...(await keysOf('eval-shifted.jsonl'))]);
  assert.deepEqual(trainKeys, new Set(m.splits.train));
  assert.deepEqual(evalKeys, new Set(m.splits.eval));
  for (const k of trainKeys) assert.ok(!evalKeys.has(k), k);
  // JSONL rows name images under images/<style>/<key>.png and carry the caption = the English label.
  const rows = (await loadJsonl(path.join(out, 'train.jsonl'))).docs;
  for (const d of rows) {
    const key = String(d.tags[LABEL_TAG]);
    assert.equal(pairText(d), m.items[key]!.label);
    assert.equal(path.basename(pairImage(d).uri!), `${key}.png`);
  }
  assert.deepEqual(m.missing, { google: 0, twitter: 0, openmoji: 0 });
});

test('PNGs are size × size RGB, transparent source pixels composited on white', async () => {
  for (const style of ['google', 'twitter', 'openmoji']) {
    const dir = path.join(out, 'images', style);
    const files = readdirSync(dir);
    assert.equal(files.length, 60);
    for (const f of files.slice(0, 10)) {
      const meta = await sharp(path.join(dir, f)).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.width, 64);
      assert.equal(meta.height, 64);
      assert.ok(meta.channels === 3 || meta.channels === 4, `${f}: ${meta.channels} channels`);
    }
  }
  // The corner of Google's 😀 is transparent in the package; in the dataset it is white.
  const src = await sharp(path.join(NM, 'emoji-datasource-google', 'img', 'google', '64', '1f600.png')).ensureAlpha().raw().toBuffer();
  assert.equal(src[3], 0);
  const { data, info } = await sharp(path.join(out, 'images', 'google', '1f600.png')).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  assert.deepEqual([...data.subarray(0, 3)], [255, 255, 255]);
  // OpenMoji is rendered at the requested size straight from the SVG.
  const small = await buildEmojiDataset({ out: path.join(tmp, 'small'), limit: 2, size: 32, locales: [] });
  for (const f of Object.values(small.items['1f600']!.files)) {
    const meta = await sharp(path.join(tmp, 'small', f)).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [32, 32, 3]);
  }
});

test('a rerun skips the images already written', async () => {
  const again = await buildEmojiDataset({ out, limit: 60 });
  assert.equal(again.build.written, 0);
  assert.equal(again.build.skipped, 180);
  assert.deepEqual(again.splits, m.splits);
  // Another size rewrites them.
  const resized = await buildEmojiDataset({ out: path.join(tmp, 'small'), limit: 2, size: 40, locales: [] });
  assert.deepEqual([resized.build.written, resized.build.skipped], [6, 0]);
  assert.equal((await sharp(path.join(tmp, 'small', 'images', 'openmoji', '1f600.png')).metadata()).width, 40);
});

test('query sets: English and cross-lingual labels of held-out items, shared tags', async () => {
  const de = json<Emojibase>('emojibase-data', 'de', 'data.json');
  const deByCode = new Map(de.map((e) => [stripFe0f(e.hexcode), e.label]));
  const q = (await loadJsonl(path.join(out, 'queries-de.jsonl'))).docs;
  assert.ok(q.length >= 1);
  assert.equal(q.length, m.counts.queries['de']);
  for (const d of q) {
    const key = String(d.tags[LABEL_TAG]);
    assert.equal(m.items[key]!.split, 'eval');
    assert.equal(pairText(d), deByCode.get(m.items[key]!.members[0]!));
  }
  for (const loc of ['fr', 'es', 'ja', 'zh']) assert.equal(m.counts.queries[loc], m.counts.eval, loc);
  const en = (await loadJsonl(path.join(out, 'queries-en.jsonl'))).docs;
  assert.deepEqual(en.map((d) => pairText(d)), m.splits.eval.map((k) => m.items[k]!.label));

  const tags = readFileSync(path.join(out, 'queries-tags.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { query: string; relevant: string[] });
  assert.ok(tags.length >= 1);
  for (const t of tags) {
    assert.ok(t.relevant.length >= 2);
    for (const k of t.relevant) assert.ok(m.items[k]!.split === 'eval' && m.items[k]!.tags.includes(t.query), `${t.query} → ${k}`);
  }
});

test('eval sets: perfect embeddings score recall 1 on single-item and tag queries', async () => {
  const set = await loadEmojiEvalSet(out, 'shifted', 'en');
  assert.equal(set.queryDocs.length, m.counts.eval);
  assert.equal(set.indexDocs.length, m.counts.eval);
  const keys = [...new Set(set.indexKeys)];
  const onehot = (ks: string[]) => keys.map((k) => (ks.includes(k) ? 1 : 0));
  const perfect = scoreEmojiEvalSet(set, set.relevant.map(onehot), set.indexKeys.map((k) => onehot([k])), { limit: 5 });
  assert.equal(perfect['clip-text-to-clip-vision_recall_at_1'], 1);

  const inDomain = await loadEmojiEvalSet(out, 'in-domain', 'tags');
  assert.ok(inDomain.relevant.some((r) => r.length >= 2));
  const tagScores = scoreEmojiEvalSet(inDomain, inDomain.relevant.map(onehot), inDomain.indexKeys.map((k) => onehot([k])), { limit: 50 });
  assert.ok(Math.abs(tagScores['clip-text-to-clip-vision_average_precision']! - 1) < 1e-9);
});

test('a missing package is a MissingPackageError naming it and the install command', async () => {
  const empty = path.join(tmp, 'empty-nm');
  mkdirSync(empty);
  await assert.rejects(resolveEmojiPackages({ packagesDir: empty }), (e: unknown) => {
    assert.ok(e instanceof MissingPackageError);
    assert.match(e.message, /emoji-datasource-google/);
    assert.match(e.message, /npm install --save-dev --save-exact emoji-datasource-google@16\.0\.0/);
    return true;
  });
  const partial = path.join(tmp, 'partial-nm');
  mkdirSync(partial);
  for (const p of ['emoji-datasource-google', 'emoji-datasource-twitter', 'emojibase-data']) symlinkSync(path.join(NM, p), path.join(partial, p));
  await assert.rejects(buildEmojiDataset({ out: path.join(tmp, 'never'), packagesDir: partial }), (e: unknown) => e instanceof MissingPackageError && /'openmoji'/.test(e.message));
});

test('an image missing from a style is counted and listed, not fatal', async () => {
  // A node_modules whose Google package lacks 1f600.png.
  const nm = path.join(tmp, 'gap-nm');
  mkdirSync(path.join(nm, 'emoji-datasource-google', 'img', 'google', '64'), { recursive: true });
  for (const p of ['emoji-datasource-twitter', 'openmoji', 'emojibase-data']) symlinkSync(path.join(NM, p), path.join(nm, p));
  for (const f of ['package.json', 'emoji.json']) symlinkSync(path.join(NM, 'emoji-datasource-google', f), path.join(nm, 'emoji-datasource-google', f));
  const pngs = path.join(NM, 'emoji-datasource-google', 'img', 'google', '64');
  for (const f of readdirSync(pngs)) if (f !== '1f600.png') symlinkSync(path.join(pngs, f), path.join(nm, 'emoji-datasource-google', 'img', 'google', '64', f));
  const gap = await buildEmojiDataset({ out: path.join(tmp, 'gap'), packagesDir: nm, limit: 5, locales: [] });
  assert.deepEqual(gap.missing, { google: 1, twitter: 0, openmoji: 0 });
  assert.deepEqual(gap.missingItems.google, ['1f600']);
  assert.deepEqual(Object.keys(gap.items['1f600']!.files).sort(), ['openmoji', 'twitter']);
  assert.equal(gap.counts.rows.train + gap.counts.rows['eval-in-domain'], 2 * 5 - 1);
});

test('CLI: datasets build emoji --push stores the sets under the name prefix', async () => {
  const home = path.join(tmp, 'home');
  const lines: string[] = [];
  const program = new Command().name('clipfit').exitOverride();
  registerDataCommands(program, (l) => lines.push(l));
  const prev = process.env['CLIPFIT_HOME'];
  process.env['CLIPFIT_HOME'] = home;
  try {
    const cliOut = path.join(tmp, 'cli');
    await program.parseAsync(['node', 'clipfit', 'datasets', 'build', 'emoji', '--out', cliOut, '--limit', '20', '--locales', 'de', '--push', '--name-prefix', 'emo', '--json']);
    const r = JSON.parse(lines.join('\n')) as { counts: EmojiManifest['counts']; pushed: { name: string; count: number }[] };
    const names = r.pushed.map((p) => p.name);
    assert.ok(names.includes('emo-train') && names.includes('emo-eval-shifted') && names.includes('emo-queries-de'), names.join(','));
    const train = await pull('emo-train', { home });
    assert.equal(train.length, r.counts.rows.train);
    assert.ok(train.every((d) => typeof d.tags[LABEL_TAG] === 'string'));
    const att = readFileSync(path.join(cliOut, 'ATTRIBUTION.md'), 'utf8');
    for (const s of ['emoji-datasource-google', 'Apache License 2.0', 'emoji-datasource-twitter', 'Creative Commons Attribution 4.0', 'openmoji', 'CC BY-SA 4.0', 'emojibase-data', 'MIT']) assert.ok(att.includes(s), s);
  } finally {
    if (prev === undefined) delete process.env['CLIPFIT_HOME'];
    else process.env['CLIPFIT_HOME'] = prev;
  }
});

test('evaluateModel scores cross-lingual queries against the shifted images (labels = item keys)', async (t) => {
  if (!requireFixture('bpe_simple_vocab_16e6.txt.gz', t)) return;
  const model = path.join(tmp, 'model');
  await createModelFolder(model, 'tiny-test', { kind: 'bpe-gz', file: path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz') }, 1);
  const r = await evaluateModel({ model, queryData: path.join(out, 'queries-de.jsonl'), indexData: path.join(out, 'eval-shifted.jsonl'), limit: 5 });
  assert.equal(r.queries, m.counts.eval);
  assert.equal(r.index, m.counts.eval);
  // One relevant image per query: R@K counts hits, so R@10 ≥ 10 / n for any model only when n ≤ 10.
  const r10 = r.metrics['clip-text-to-clip-vision_recall_at_10']!;
  assert.ok(r10 >= 0 && r10 <= 1);
  if (m.counts.eval <= 10) assert.equal(r10, 1);
  // The CSV form works on its own (labels from the shared captions).
  const csv = await evaluateModel({ model, queryData: path.join(out, 'eval-in-domain.csv'), indexData: path.join(out, 'eval-in-domain.csv'), limit: 5 });
  assert.equal(csv.queries, m.counts.rows['eval-in-domain']);
});
