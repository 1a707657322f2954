// The files of a built emoji dataset, all in OUT and all naming images by paths relative to OUT:
//   <set>.csv    Finetuner CSV (text,image). Two columns only, as data/csv.ts reads them; the rows of
//                one item share its caption, so the CSV loader's caption/image components give them
//                one finetuner_label (English labels are unique per item).
//   <set>.jsonl  the same rows as JSONL pairs {text, image, label: item key, tags: {style, emoji}}:
//                explicit labels, equal across files, so queries of one file can be scored against
//                images of another (evaluateModel(queryData=queries-de.jsonl, indexData=eval-shifted.jsonl)).
//   queries-<locale>.jsonl  one pair per held-out item: {text: label in that locale, image: its
//                in-domain image, label: key}. Only the text matters as a query; the image keeps
//                the line a valid pair.
//   queries-tags.jsonl      {query: tag, relevant: [item keys]} for every tag that several held-out
//                items share (not Documents: one query, several relevant items).
//   ATTRIBUTION.md          licence and credit line of each package.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { EmojiItem } from './join.js';
import { EMOJI_PACKAGES } from './packages.js';
import type { EmojiPackageDirs, EmojiStyle } from './packages.js';

/** One image row: an item in one style. */
export interface ImageRow {
  item: EmojiItem;
  style: EmojiStyle;
  /** Relative to OUT, '/'-separated. */
  image: string;
}

export interface TagQuery {
  query: string;
  relevant: string[];
}

/** RFC 4180 field: quoted when it holds a comma, a quote or a line break. */
export function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** Write via a temporary file and a rename, so readers never see half a file. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, file);
}

export async function writePairsCsv(file: string, rows: readonly ImageRow[]): Promise<void> {
  const lines = ['text,image', ...rows.map((r) => `${csvField(r.item.label)},${csvField(r.image)}`)];
  await writeAtomic(file, lines.join('\n') + '\n');
}

export async function writePairsJsonl(file: string, rows: readonly ImageRow[]): Promise<void> {
  const lines = rows.map((r) => JSON.stringify({ text: r.item.label, image: r.image, label: r.item.key, tags: { style: r.style, emoji: r.item.emoji } }));
  await writeAtomic(file, lines.map((l) => l + '\n').join(''));
}

/** Queries in one locale: `texts` maps an item key to its query text (items without one are left out). */
export async function writeQueriesJsonl(file: string, locale: string, items: readonly EmojiItem[], texts: ReadonlyMap<string, string>, imageOf: (it: EmojiItem) => string | undefined): Promise<number> {
  const lines: string[] = [];
  for (const it of items) {
    const text = texts.get(it.key);
    const image = imageOf(it);
    if (!text || !image) continue;
    lines.push(JSON.stringify({ text, image, label: it.key, tags: { locale, emoji: it.emoji } }));
  }
  await writeAtomic(file, lines.map((l) => l + '\n').join(''));
  return lines.length;
}

/** Tags carried by at least `minItems` of `items`, sorted by tag; relevant keys in item order. */
export function tagQueries(items: readonly EmojiItem[], minItems = 2): TagQuery[] {
  const byTag = new Map<string, string[]>();
  for (const it of items) {
    for (const tag of new Set(it.tags.map((t) => t.trim()).filter(Boolean))) {
      const list = byTag.get(tag);
      if (list) list.push(it.key);
      else byTag.set(tag, [it.key]);
    }
  }
  return [...byTag]
    .filter(([, keys]) => keys.length >= minItems)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([query, relevant]) => ({ query, relevant }));
}

export async function writeTagQueries(file: string, queries: readonly TagQuery[]): Promise<void> {
  await writeAtomic(file, queries.map((q) => JSON.stringify(q) + '\n').join(''));
}

export async function writeAttribution(file: string, dirs: EmojiPackageDirs, styles: readonly EmojiStyle[]): Promise<void> {
  const used = Object.values(EMOJI_PACKAGES).filter((p) => p.role === 'labels' || styles.includes(p.role as EmojiStyle));
  const lines = [
    '# Attribution',
    '',
    'This dataset was built by `clipfit datasets build emoji` from the npm packages below. The images keep',
    'the licences of their sources; a model trained on them and any redistribution must carry these credits.',
    '',
  ];
  for (const p of used) {
    lines.push(`## ${p.name} ${dirs.versions[p.role]}`, '', `- Role: ${p.role === 'labels' ? 'labels and tags (captions and queries)' : `${p.role} style images`}`);
    lines.push(`- Licence: ${p.licence}`, `- Source: ${p.homepage}`, '', p.credit, '');
  }
  await writeAtomic(file, lines.join('\n'));
}
