// Training and evaluation data named by a string: a CSV/TSV file (Finetuner's rules), a JSONL
// file, a folder of images with .txt captions, or `dataset:NAME[@vN]` from the local store.
// Images given by http(s) URL or data: URI are read (and checked) here, before training starts.

import { existsSync, statSync } from 'node:fs';
import { ConfigError, DataError } from '../errors.js';
import { DocumentArray, LABEL_TAG, isPair, pairImage, pairText } from './index.js';
import type { Document, SkippedRow } from './index.js';
import { loadCsv } from './csv.js';
import { fetchRemoteImages, imageInputOf } from './doc_images.js';
import { loadFolder } from './folder.js';
import { loadJsonl } from './jsonl.js';
import { documentError } from './origin.js';
import { pull } from './store.js';

/** A skipped row: `row` counts lines in JSONL files (unit 'line'). */
export type SkippedRecord = SkippedRow & { file: string; unit: 'row' | 'line' };

export interface LoadedDocs {
  docs: DocumentArray;
  /** Bad rows skipped (with skipBadRows). */
  skipped: SkippedRecord[];
}

export interface LoadedPairs {
  docs: DocumentArray;
  skipped: number;
}

/** Every Document of a data spec. `labeled: 'auto'` reads a CSV whose header names a label column
 * as labeled items (evaluation data) instead of pairs. */
export async function loadDocuments(spec: string, opts: { skipBadRows?: boolean; field?: string; labeled?: 'auto' } = {}): Promise<LoadedDocs> {
  const field = opts.field ?? 'trainData';
  const ds = /^dataset:([^@]+)(?:@v(\d+))?$/.exec(spec);
  const bad = { skipBadRows: opts.skipBadRows };
  if (ds) return { docs: await pull(ds[1]!, ds[2] ? { version: Number(ds[2]) } : {}), skipped: [] };
  if (!existsSync(spec)) throw new ConfigError(field, `no such file, folder or dataset: ${spec}`);
  const r = statSync(spec).isDirectory()
    ? await loadFolder(spec, bad)
    : /\.jsonl?$/i.test(spec)
      ? await loadJsonl(spec, bad)
      : await loadCsv(spec, { ...bad, ...(opts.labeled ? { isLabeled: opts.labeled } : {}) });
  const unit = 'lines' in r.stats ? 'line' : 'row';
  return { docs: r.docs, skipped: r.stats.skipped.map((s) => ({ ...s, file: spec, unit })) };
}

/** The text–image pairs of a data spec, their http(s) and data: images read into blobs. A Document
 * that is no pair, or whose image cannot be read, is a DataError naming its row — or, with
 * skipBadRows, skipped and counted. */
export async function loadPairs(spec: string, opts: { skipBadRows?: boolean; field?: string } = {}): Promise<LoadedPairs> {
  const loaded = await loadDocuments(spec, opts);
  const skipped = [...loaded.skipped];
  const pairs: Document[] = [];
  loaded.docs.forEach((d, i) => {
    if (isPair(d)) return pairs.push(d);
    const e = documentError(d, 'image', 'is not a text–image pair (needs a text and an image)', `${spec}[${i}]`);
    if (!opts.skipBadRows) throw e;
    skipped.push({ file: e.file, unit: e.unit, row: e.row ?? i + 1, reason: e.detail });
  });
  const fetched = await fetchRemoteImages(pairs, { skipBadRows: opts.skipBadRows, where: spec });
  skipped.push(...fetched.skipped);
  if (fetched.docs.length === 0) throw new DataError(spec, undefined, undefined, 'holds no image–text pairs');
  return { docs: new DocumentArray(fetched.docs), skipped: skipped.length };
}

/** The image input of a pair: its bytes when loaded, else its path or URI (read by the image resolver). */
export function imageInput(doc: Document): string | Uint8Array {
  const input = imageInputOf(doc);
  if (input === null) throw new DataError('<documents>', undefined, 'image', `document ${doc.id} has an image chunk with neither uri nor blob`);
  return input;
}

export function labelOf(doc: Document, fallback: string | number): string | number {
  const l = doc.tags[LABEL_TAG] ?? pairImage(doc).tags[LABEL_TAG];
  return typeof l === 'string' || typeof l === 'number' ? l : fallback;
}

export { pairText };
