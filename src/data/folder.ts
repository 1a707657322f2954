// A folder of images with captions beside them: every image (.png .jpg .jpeg .webp .gif, any case)
// whose `<same base name>.txt` sits in the same folder becomes a pair (the caption is the file's
// UTF-8 text, trimmed). Sub-folders are walked (hidden ones, starting with '.', are not); files are
// taken in code-point order of their relative path, so the result does not depend on the file
// system. Images without a caption are listed in stats.uncaptioned. Labels follow shared captions
// (and, were an image listed twice, shared images) as in the CSV loader.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DataError } from '../errors.js';
import { DocumentArray } from './document.js';
import type { SkippedRow } from './csv.js';
import { componentLabels, labeledPair } from './pair_labels.js';
import { hasImageExtension } from './uri.js';

export interface FolderOptions {
  /** Walk sub-folders (default true). */
  recursive?: boolean;
  /** Skip images whose caption is empty or not UTF-8, listing them in stats.skipped (default false). */
  skipBadRows?: boolean;
}

export interface FolderStats {
  dir: string;
  images: number;
  docs: number;
  /** Images (relative paths) with no caption file beside them. */
  uncaptioned: string[];
  /** Bad captions; `row` is the 1-based index of the image in sorted order, `field` the caption file. */
  skipped: SkippedRow[];
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function walk(root: string, rel: string, recursive: boolean, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await fsp.readdir(path.join(root, rel), { withFileTypes: true });
  } catch (err) {
    throw new DataError(path.join(root, rel), undefined, undefined, `cannot list folder: ${(err as Error).message}`, 'row', { cause: err });
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const st = await fsp.stat(path.join(root, r)).catch(() => null);
      isDir = !!st?.isDirectory();
      isFile = !!st?.isFile();
    }
    if (isDir && recursive) await walk(root, r, recursive, out);
    else if (isFile) out.push(r);
  }
}

export async function loadFolder(dir: string, opts: FolderOptions = {}): Promise<{ docs: DocumentArray; stats: FolderStats }> {
  const root = path.resolve(dir);
  const files: string[] = [];
  await walk(root, '', opts.recursive !== false, files);
  files.sort(byCodePoint);
  const present = new Set(files);
  const images = files.filter(hasImageExtension);
  const uncaptioned: string[] = [];
  const skipped: SkippedRow[] = [];
  const pairs: { text: string; image: string }[] = [];
  for (const [k, rel] of images.entries()) {
    const capRel = rel.slice(0, rel.length - path.extname(rel).length) + '.txt';
    if (!present.has(capRel)) {
      uncaptioned.push(rel);
      continue;
    }
    const capFile = path.join(root, capRel);
    let reason: string | undefined;
    let text = '';
    try {
      text = UTF8.decode(await fsp.readFile(capFile)).replace(/^\uFEFF/, '').trim();
      if (!text) reason = `empty caption for image ${rel}`;
    } catch (err) {
      reason = err instanceof TypeError ? `caption for image ${rel} is not valid UTF-8` : `cannot read: ${(err as Error).message}`;
    }
    if (reason) {
      if (!opts.skipBadRows) throw new DataError(capFile, undefined, 'text', reason);
      skipped.push({ row: k + 1, field: capRel, reason });
      continue;
    }
    pairs.push({ text, image: path.join(root, rel) });
  }
  const { labels } = componentLabels(pairs);
  const docs = new DocumentArray(
    pairs.map((p, k) => {
      return labeledPair(p.text, p.image, labels[k]!);
    }),
  );
  return { docs, stats: { dir: root, images: images.length, docs: docs.length, uncaptioned, skipped } };
}
