// Training and evaluation data named by a string: a CSV/TSV file (Finetuner's rules), a JSONL
// file, a folder of images with .txt captions, or `dataset:NAME[@vN]` from the local store.

import { existsSync, statSync } from 'node:fs';
import { ConfigError, DataError } from '../errors.js';
import { DocumentArray, LABEL_TAG, isPair, pairImage, pairText } from '../data/index.js';
import type { Document } from '../data/index.js';
import { loadCsv } from '../data/csv.js';
import { loadFolder } from '../data/folder.js';
import { loadJsonl } from '../data/jsonl.js';
import { pull } from '../data/store.js';

export interface LoadedPairs {
  docs: DocumentArray;
  skipped: number;
}

export async function loadPairs(spec: string, opts: { skipBadRows?: boolean; field?: string } = {}): Promise<LoadedPairs> {
  const field = opts.field ?? 'trainData';
  const ds = /^dataset:([^@]+)(?:@v(\d+))?$/.exec(spec);
  let docs: DocumentArray;
  let skipped = 0;
  const bad = { skipBadRows: opts.skipBadRows };
  if (ds) docs = await pull(ds[1]!, ds[2] ? { version: Number(ds[2]) } : {});
  else if (!existsSync(spec)) throw new ConfigError(field, `no such file, folder or dataset: ${spec}`);
  else {
    const r = statSync(spec).isDirectory() ? await loadFolder(spec, bad) : /\.jsonl?$/i.test(spec) ? await loadJsonl(spec, bad) : await loadCsv(spec, bad);
    docs = r.docs;
    skipped = r.stats.skipped.length;
  }
  const pairs = docs.filter((d) => isPair(d));
  if (pairs.length === 0) throw new DataError(spec, undefined, undefined, 'holds no image–text pairs');
  return { docs: pairs, skipped };
}

/** The image input of a pair: its bytes when loaded, else its path or URI. */
export function imageInput(doc: Document): string | Uint8Array {
  const img = pairImage(doc);
  if (img.blob) return img.blob;
  if (img.uri) return img.uri.startsWith('file://') ? new URL(img.uri).pathname : img.uri;
  throw new DataError('<documents>', undefined, 'image', `document ${doc.id} has an image chunk with neither uri nor blob`);
}

export function labelOf(doc: Document, fallback: string | number): string | number {
  const l = doc.tags[LABEL_TAG] ?? pairImage(doc).tags[LABEL_TAG];
  return typeof l === 'string' || typeof l === 'number' ? l : fallback;
}

export { pairText };
