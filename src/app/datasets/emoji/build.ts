// buildEmojiDataset: join the packages (join.ts), split by key (split.ts), write one white-background
// RGB PNG per item and style (rasterise.ts), then the CSV/JSONL sets, query sets, manifest.json and
// ATTRIBUTION.md (writers.ts). Images already in OUT at the same size are kept, so a rerun (or a
// build that was interrupted) only writes what is missing.
//
// Sets: train (train items × google, twitter), eval-in-domain (held-out items × google, twitter),
// eval-shifted (held-out items × openmoji); queries-en and queries-<locale> (held-out items' labels),
// queries-tags (tags shared by held-out items).

import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../../errors.js';
import { emojibaseLabels, joinEmoji } from './join.js';
import type { EmojiItem, EmojiJoinStats } from './join.js';
import { EMOJI_PACKAGES, EMOJI_STYLES, resolveEmojiPackages, SHIFTED_STYLES, TRAIN_STYLES } from './packages.js';
import type { EmojiPackageRole, EmojiStyle, EmojiResolveOptions } from './packages.js';
import { mapPool, rasteriseTo } from './rasterise.js';
import { DEFAULT_TRAIN_PERCENT, splitItems } from './split.js';
import type { EmojiSplit } from './split.js';
import { tagQueries, writeAttribution, writePairsCsv, writePairsJsonl, writeQueriesJsonl, writeTagQueries } from './writers.js';
import type { ImageRow } from './writers.js';

export const EMOJI_MANIFEST_FORMAT = 'clipfit-emoji/1';
export const DEFAULT_EMOJI_SIZE = 64;
/** Cross-lingual query locales (emojibase-data 17 has 28; these cover four scripts). */
export const DEFAULT_QUERY_LOCALES: readonly string[] = ['de', 'fr', 'es', 'ja', 'zh'];

/** The image sets (each written as <name>.csv and <name>.jsonl). */
export type EmojiImageSet = 'train' | 'eval-in-domain' | 'eval-shifted';
export const EMOJI_IMAGE_SETS: readonly EmojiImageSet[] = ['train', 'eval-in-domain', 'eval-shifted'];

export interface EmojiBuildProgress {
  phase: 'join' | 'images' | 'files';
  done: number;
  total: number;
}

export interface EmojiBuildOptions extends EmojiResolveOptions {
  /** Output folder (created); keep it outside the repository or gitignored. */
  out: string;
  /** Image side in pixels (default 64, the emoji-datasource PNG size). */
  size?: number;
  /** Styles to build (default all three). */
  styles?: readonly EmojiStyle[];
  /** Only the first `limit` items in emojibase order (the split of an item does not change). */
  limit?: number;
  /** Locales of the cross-lingual query sets (default DEFAULT_QUERY_LOCALES). */
  locales?: readonly string[];
  /** Percent of items in train (default 80). */
  trainPercent?: number;
  /** A tag becomes a query when at least this many held-out items carry it (default 2). */
  minTagItems?: number;
  /** Images rendered in parallel (default: the CPU count). */
  concurrency?: number;
  onProgress?: (p: EmojiBuildProgress) => void;
}

export interface EmojiManifestItem {
  label: string;
  emoji: string;
  split: EmojiSplit;
  tags: string[];
  category: string;
  members: string[];
  variants: string[];
  /** Relative to OUT, per style that has it. */
  files: Partial<Record<EmojiStyle, string>>;
}

export interface EmojiManifest {
  format: string;
  /** How item keys are formed. */
  keyForm: string;
  size: number;
  background: 'white';
  channels: 3;
  styles: { built: EmojiStyle[]; train: EmojiStyle[]; shifted: EmojiStyle[] };
  split: { rule: string; trainPercent: number };
  packages: Record<string, string>;
  limit: number | null;
  counts: {
    join: Omit<EmojiJoinStats, 'unlabelled' | 'noImage'> & { unlabelled: number; noImage: number };
    items: number;
    train: number;
    eval: number;
    images: Partial<Record<EmojiStyle, number>>;
    rows: Record<EmojiImageSet, number>;
    queries: Record<string, number>;
  };
  /** Items without an image in a style, counted and listed per built style. */
  missing: Partial<Record<EmojiStyle, number>>;
  missingItems: Partial<Record<EmojiStyle, string[]>>;
  files: { sets: Record<EmojiImageSet, { csv: string; jsonl: string }>; queries: Record<string, string>; attribution: string };
  splits: Record<EmojiSplit, string[]>;
  items: Record<string, EmojiManifestItem>;
  build: { written: number; skipped: number; ms: number };
}

const KEY_FORM =
  "lower-case hex codepoints of the group's representative joined by '-', FE0F removed, ZWJ kept " +
  "(1f600, 1f9d1-200d-1f373); skin-tone and gender variants belong to their neutral form's item";

function checkOptions(o: EmojiBuildOptions): { size: number; styles: EmojiStyle[] } {
  const size = o.size ?? DEFAULT_EMOJI_SIZE;
  if (!Number.isInteger(size) || size < 8 || size > 1024) throw new ConfigError('size', `must be an integer in [8, 1024], got ${size}`);
  const styles = [...(o.styles ?? EMOJI_STYLES)];
  for (const s of styles) if (!EMOJI_STYLES.includes(s)) throw new ConfigError('styles', `unknown style ${JSON.stringify(s)}; styles are ${EMOJI_STYLES.join(', ')}`);
  if (!styles.length) throw new ConfigError('styles', 'no style to build');
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < 1)) throw new ConfigError('limit', `must be a positive integer, got ${o.limit}`);
  if (!o.out) throw new ConfigError('out', 'an output folder is required');
  return { size, styles };
}

/** Relative image path of an item in a style. */
export const emojiImagePath = (style: EmojiStyle, key: string): string => `images/${style}/${key}.png`;

export async function buildEmojiDataset(o: EmojiBuildOptions): Promise<EmojiManifest> {
  const t0 = performance.now();
  const { size, styles } = checkOptions(o);
  const out = path.resolve(o.out);
  const locales = [...(o.locales ?? DEFAULT_QUERY_LOCALES)];
  const trainPercent = o.trainPercent ?? DEFAULT_TRAIN_PERCENT;
  const progress = o.onProgress ?? (() => {});

  const dirs = await resolveEmojiPackages(o);
  for (const loc of locales) {
    if (loc === 'en' || !/^[a-z]{2}(-[a-z]{2,4})?$/.test(loc) || !existsSync(path.join(dirs.dirs.labels, loc, 'data.json'))) {
      const have = (await fsp.readdir(dirs.dirs.labels, { withFileTypes: true })).filter((e) => e.isDirectory() && existsSync(path.join(dirs.dirs.labels, e.name, 'data.json'))).map((e) => e.name);
      throw new ConfigError('locales', `emojibase-data ${dirs.versions.labels} has no query locale ${JSON.stringify(loc)} (en is always written); it has ${have.filter((l) => l !== 'en').join(', ')}`);
    }
  }
  progress({ phase: 'join', done: 0, total: 1 });
  const join = await joinEmoji(dirs, styles);
  const items = o.limit !== undefined ? join.items.slice(0, o.limit) : join.items;
  const sides = splitItems(items, trainPercent);
  progress({ phase: 'join', done: 1, total: 1 });

  // Images (an existing file of another size is rewritten: rasterise.ts).
  const jobs: { item: EmojiItem; style: EmojiStyle; src: string }[] = [];
  const missingItems: Partial<Record<EmojiStyle, string[]>> = {};
  for (const s of styles) missingItems[s] = [];
  for (const item of items) {
    for (const style of styles) {
      const src = item.sources[style];
      if (src) jobs.push({ item, style, src });
      else missingItems[style]!.push(item.key);
    }
  }
  let done = 0;
  const outcomes = await mapPool(jobs, o.concurrency ?? Math.max(2, os.availableParallelism()), async (j) => {
    const r = await rasteriseTo(j.src, path.join(out, emojiImagePath(j.style, j.item.key)), size);
    progress({ phase: 'images', done: ++done, total: jobs.length });
    return r;
  });

  // Sets.
  const has = (it: EmojiItem, s: EmojiStyle): boolean => styles.includes(s) && it.sources[s] !== undefined;
  const rows = (list: readonly EmojiItem[], setStyles: readonly EmojiStyle[]): ImageRow[] =>
    list.flatMap((item) => setStyles.filter((s) => has(item, s)).map((style) => ({ item, style, image: emojiImagePath(style, item.key) })));
  const setRows: Record<EmojiImageSet, ImageRow[]> = {
    train: rows(sides.train, TRAIN_STYLES),
    'eval-in-domain': rows(sides.eval, TRAIN_STYLES),
    'eval-shifted': rows(sides.eval, SHIFTED_STYLES),
  };
  const files = { sets: {} as EmojiManifest['files']['sets'], queries: {} as Record<string, string>, attribution: 'ATTRIBUTION.md' };
  const totalFiles = EMOJI_IMAGE_SETS.length + locales.length + 3;
  let written = 0;
  const fileDone = (): void => progress({ phase: 'files', done: ++written, total: totalFiles });
  for (const set of EMOJI_IMAGE_SETS) {
    files.sets[set] = { csv: `${set}.csv`, jsonl: `${set}.jsonl` };
    await writePairsCsv(path.join(out, `${set}.csv`), setRows[set]);
    await writePairsJsonl(path.join(out, `${set}.jsonl`), setRows[set]);
    fileDone();
  }

  // Query sets over the held-out items; a query's image is its item's first in-domain image.
  const queryImage = (it: EmojiItem): string | undefined => {
    const s = [...TRAIN_STYLES, ...SHIFTED_STYLES].find((st) => has(it, st));
    return s ? emojiImagePath(s, it.key) : undefined;
  };
  const queries: Record<string, number> = {};
  const repCode = new Map(sides.eval.map((it) => [it.key, it.members[0]!]));
  const localeTexts = async (loc: string): Promise<Map<string, string>> => {
    if (loc === 'en') return new Map(sides.eval.map((it) => [it.key, it.label]));
    const labels = await emojibaseLabels(dirs, loc);
    const m = new Map<string, string>();
    for (const [key, code] of repCode) {
      const l = labels.get(code)?.label;
      if (l) m.set(key, l);
    }
    return m;
  };
  for (const loc of ['en', ...locales]) {
    files.queries[loc] = `queries-${loc}.jsonl`;
    queries[loc] = await writeQueriesJsonl(path.join(out, files.queries[loc]!), loc, sides.eval, await localeTexts(loc), queryImage);
    fileDone();
  }
  const tags = tagQueries(sides.eval, o.minTagItems ?? 2);
  files.queries['tags'] = 'queries-tags.jsonl';
  await writeTagQueries(path.join(out, files.queries['tags']), tags);
  queries['tags'] = tags.length;
  fileDone();
  await writeAttribution(path.join(out, files.attribution), dirs, styles);

  const packages: Record<string, string> = {};
  for (const role of Object.keys(EMOJI_PACKAGES) as EmojiPackageRole[]) packages[EMOJI_PACKAGES[role].name] = dirs.versions[role];
  const manifestItems: Record<string, EmojiManifestItem> = {};
  for (const [split, list] of Object.entries(sides) as [EmojiSplit, EmojiItem[]][]) {
    for (const it of list) {
      const itemFiles: Partial<Record<EmojiStyle, string>> = {};
      for (const s of styles) if (has(it, s)) itemFiles[s] = emojiImagePath(s, it.key);
      manifestItems[it.key] = { label: it.label, emoji: it.emoji, split, tags: it.tags, category: it.category, members: it.members, variants: it.variants, files: itemFiles };
    }
  }
  const images: Partial<Record<EmojiStyle, number>> = {};
  const missing: Partial<Record<EmojiStyle, number>> = {};
  for (const s of styles) {
    images[s] = items.length - missingItems[s]!.length;
    missing[s] = missingItems[s]!.length;
  }
  const { unlabelled, noImage, ...joinCounts } = join.stats;
  const manifest: EmojiManifest = {
    format: EMOJI_MANIFEST_FORMAT,
    keyForm: KEY_FORM,
    size,
    background: 'white',
    channels: 3,
    styles: { built: styles, train: TRAIN_STYLES.filter((s) => styles.includes(s)), shifted: SHIFTED_STYLES.filter((s) => styles.includes(s)) },
    split: { rule: `first 4 bytes of sha256(key) as a big-endian uint32, mod 100 < ${trainPercent} → train, else eval`, trainPercent },
    packages,
    limit: o.limit ?? null,
    counts: {
      join: { ...joinCounts, unlabelled: unlabelled.length, noImage: noImage.length },
      items: items.length,
      train: sides.train.length,
      eval: sides.eval.length,
      images,
      rows: { train: setRows.train.length, 'eval-in-domain': setRows['eval-in-domain'].length, 'eval-shifted': setRows['eval-shifted'].length },
      queries,
    },
    missing,
    missingItems,
    files,
    splits: { train: sides.train.map((it) => it.key), eval: sides.eval.map((it) => it.key) },
    items: manifestItems,
    build: { written: outcomes.filter((r) => r === 'written').length, skipped: outcomes.filter((r) => r === 'skipped').length, ms: 0 },
  };
  manifest.build.ms = Math.round(performance.now() - t0);
  const tmp = path.join(out, `manifest.json.${process.pid}.tmp`);
  await fsp.writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n');
  await fsp.rename(tmp, path.join(out, 'manifest.json'));
  return manifest;
}
