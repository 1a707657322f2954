// Finetuner's CSV training data for text-to-image (CLIP), read locally.
//
// Pair mode (default): two columns, an image and a caption, in either order; the image is told from
// the caption on each row by `looksLikeImage`. Each row becomes a pair Document (chunks: text, image).
// Labels: Finetuner gives rows that share a value one `finetuner_label` (an int, numbered in order
// of first appearance). It only links through the first column (a later row whose second value was
// seen starts a new label, and a row whose two values were both seen before is dropped). Here the
// link is symmetric and transitive: labels are the connected components of the graph whose nodes are
// the distinct captions and images and whose edges are the rows, so every pair sharing a caption or
// an image, directly or through others, shares a label (CLIP's loss must not treat them as
// negatives). Only an exact repeat of a row is dropped (counted in stats.duplicates).
// Labeled mode (`isLabeled`): one column is an item (an image or a text), the other its label, which
// becomes `tags.finetuner_label` (a string) of a single Document: evaluation data as Finetuner has
// it (text queries, image index, relevant when the labels are equal). The label is column 2 unless
// the header names column 1 label, labels, finetuner_label, class or category. A header naming the
// item column text, caption, query, … makes every item a text; image, uri, path, … every item an
// image; otherwise each item is told by the image rule. With `isLabeled: 'auto'` a file is labeled
// when its header names a label column (`text,label`, `image,label`), else it holds pairs.
//
// Image rule: a value is an image when it is an http(s):// URL, a file:// URL, a data:image/ URI, or
// a path ending in .png/.jpg/.jpeg/.webp/.gif that either has no whitespace or exists (relative
// paths resolve against the CSV's folder). So "cat.jpg" and "imgs/a b.png" (if present) are images;
// "a photo saved as cat.jpg" is a caption unless such a file exists.
// Rows are spreadsheet rows (1-based; the header and blank lines count, a quoted line break does not).
// Values are trimmed (Finetuner's own examples put a space after the comma); blank lines are skipped;
// a file without any row is an error.

import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../errors.js';
import { Document, DocumentArray, LABEL_TAG } from './document.js';
import { firstInvalidUtf8, isBlankRecord, readRecords, sniffDelimiter } from './csv_parse.js';
import type { RawRecord } from './csv_parse.js';
import { componentLabels, labeledPair } from './pair_labels.js';
import { imageSourceKind } from './image_source.js';
import { setOrigin } from './origin.js';
import { hasImageExtension, localPath, uriKind } from './uri.js';

export interface CsvOptions {
  /** One column is a label for the item in the other (default false: the two columns are a pair);
   * 'auto': labeled when the header names a label column. */
  isLabeled?: boolean | 'auto';
  /** Whether row 1 is a header (default 'auto': see `detectHeader`). */
  hasHeader?: boolean | 'auto';
  /** Default 'auto': the one that splits most sampled rows into two fields (a tie goes to tab). */
  delimiter?: ',' | '\t' | 'auto';
  /** Skip bad rows and list them in stats.skipped instead of throwing (default false). */
  skipBadRows?: boolean;
  /** Check that local image files exist (default true). */
  checkImages?: boolean;
  /** Folder for relative image paths (default: the CSV's folder). */
  baseDir?: string;
}

export interface SkippedRow {
  row: number;
  field?: string;
  reason: string;
}

export interface CsvStats {
  file: string;
  delimiter: ',' | '\t';
  /** The header's values, or null when row 1 is data. */
  header: string[] | null;
  /** Data rows read (header and blank lines not counted). */
  rows: number;
  /** Documents made. */
  docs: number;
  /** Exact repeats of an earlier row, dropped (pair mode). */
  duplicates: number;
  /** Distinct `finetuner_label` values. */
  labels: number;
  skipped: SkippedRow[];
}

export interface CsvResult {
  docs: DocumentArray;
  stats: CsvStats;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Values that mark row 1 as a header, compared lower-cased with spaces and dashes as '_'. */
const HEADER_NAMES = new Set([
  'image', 'images', 'img', 'image_uri', 'image_url', 'image_path', 'image_file', 'uri', 'url', 'path', 'file', 'filename',
  'file_name', 'filepath', 'file_path', 'text', 'texts', 'caption', 'captions', 'description', 'title', 'sentence', 'query',
  'label', 'labels', 'class', 'category', 'item', 'document', 'content', 'name', 'alt', 'alt_text', 'tag', 'finetuner_label',
]);
const headerKey = (v: string) => v.trim().toLowerCase().replace(/[\s-]+/g, '_');
const isHeaderName = (v: string) => HEADER_NAMES.has(headerKey(v));
const LABEL_NAMES = new Set(['label', 'labels', 'finetuner_label', 'class', 'category']);
const TEXT_NAMES = new Set(['text', 'texts', 'caption', 'captions', 'description', 'title', 'sentence', 'query', 'content', 'alt', 'alt_text']);
const IMAGE_NAMES = new Set(['image', 'images', 'img', 'image_uri', 'image_url', 'image_path', 'image_file', 'uri', 'url', 'path', 'file', 'filename', 'file_name', 'filepath', 'file_path']);

/** The image rule above. `baseDir` resolves relative paths for the existence test. */
export function looksLikeImage(value: string, baseDir: string): boolean {
  const v = value.trim();
  if (!v || /[\r\n]/.test(v)) return false;
  const kind = uriKind(v);
  if (kind === 'http' || kind === 'file-url') return true;
  if (kind === 'data') return /^data:image\//i.test(v);
  if (kind !== 'path' || !hasImageExtension(v)) return false;
  if (!/\s/.test(v)) return true;
  try {
    return statSync(path.resolve(baseDir, v)).isFile();
  } catch {
    return false;
  }
}

/** Read a Finetuner CSV file into Documents (pairs, or labeled items with `isLabeled`). */
export async function loadCsv(file: string, opts: CsvOptions = {}): Promise<CsvResult> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fsp.readFile(file));
  } catch (err) {
    throw new DataError(file, undefined, undefined, `cannot read: ${(err as Error).message}`, 'row', { cause: err });
  }
  return parseCsv(bytes, { ...opts, file, baseDir: opts.baseDir ?? path.dirname(path.resolve(file)) });
}

/** Bad row: thrown, or recorded when skipping. */
class RowError extends Error {
  constructor(readonly row: number, readonly field: string | undefined, readonly reason: string) {
    super(reason);
  }
}

interface Row {
  row: number;
  values: string[];
  /** Per column: written as a quoted field (`""` is an explicit empty value, a bare empty field a missing one). */
  quoted: boolean[];
}

/** Parse CSV bytes; `file` names the source in errors. */
export function parseCsv(bytes: Uint8Array, opts: CsvOptions & { file?: string } = {}): CsvResult {
  const file = opts.file ?? '<csv>';
  const baseDir = opts.baseDir ?? process.cwd();
  const delimiter = !opts.delimiter || opts.delimiter === 'auto' ? sniffDelimiter(bytes) : opts.delimiter;
  const skipped: SkippedRow[] = [];
  const bad = (e: RowError): void => {
    if (!opts.skipBadRows) throw new DataError(file, e.row, e.field, e.reason);
    skipped.push(e.field === undefined ? { row: e.row, reason: e.reason } : { row: e.row, field: e.field, reason: e.reason });
  };

  // 1. records → trimmed strings; structure and encoding errors first.
  const rows: Row[] = [];
  let records = 0;
  for (const rec of readRecords(bytes, delimiter)) {
    if (isBlankRecord(rec)) continue;
    records++;
    try {
      rows.push({ row: rec.row, values: decodeRecord(rec, bytes), quoted: rec.fields.map((f) => bytes[f.start] === 0x22) });
    } catch (e) {
      if (e instanceof RowError) bad(e);
      else throw e;
    }
  }

  if (records === 0) throw new DataError(file, undefined, undefined, 'the file has no rows');

  // 2. header.
  let header: string[] | null = null;
  const first = rows[0];
  if (first && isHeader(first, rows.slice(1, 21), opts, baseDir)) header = rows.shift()!.values;

  // 3. rows → documents.
  const labelCol = header ? header.findIndex((v) => LABEL_NAMES.has(headerKey(v))) : -1;
  const labeled = opts.isLabeled === 'auto' ? labelCol >= 0 : !!opts.isLabeled;
  const ctx: Ctx = { ...opts, baseDir, file, header, labelCol: labelCol === 0 ? 0 : 1 };
  const { docs, duplicates, labels } = (labeled ? labeledDocs : pairDocs)(rows, ctx, (e) => bad(e));
  skipped.sort((a, b) => a.row - b.row);
  const stats: CsvStats = { file, delimiter, header, rows: records - (header ? 1 : 0), docs: docs.length, duplicates, labels, skipped };
  return { docs, stats };
}

function decodeRecord(rec: RawRecord, bytes: Uint8Array): string[] {
  if (rec.error) throw new RowError(rec.row, 'columns', rec.error);
  const values = rec.fields.map((f, k) => {
    try {
      return UTF8.decode(f.bytes).trim();
    } catch {
      const at = firstInvalidUtf8(bytes, f.start, f.end);
      const where = at >= 0 ? ` (byte 0x${bytes[at]!.toString(16).toUpperCase().padStart(2, '0')} at file offset ${at})` : '';
      throw new RowError(rec.row, `column ${k + 1}`, `not valid UTF-8${where}; save the file as UTF-8`);
    }
  });
  if (values.length !== 2) {
    throw new RowError(rec.row, 'columns', `expected 2 columns, found ${values.length}` + (values.length > 2 ? ' (quote fields that contain the delimiter)' : ''));
  }
  return values;
}

/**
 * 'auto': row 1 is a header when both its values are usual column names (image, text, caption,
 * label, …), or when neither is an image while most of the next rows hold one (pair mode, or
 * labeled mode with image items).
 */
function isHeader(first: Row, next: Row[], opts: CsvOptions, baseDir: string): boolean {
  if (opts.hasHeader === true) return true;
  if (opts.hasHeader === false) return false;
  if (first.values.every(isHeaderName)) return true;
  const imgs = (r: Row) => (opts.isLabeled === true ? [r.values[0]!] : r.values).some((v) => looksLikeImage(v, baseDir));
  if (imgs(first) || next.length === 0) return false;
  return next.filter(imgs).length * 2 > next.length;
}

type Sink = (e: RowError) => void;
type Built = { docs: DocumentArray; duplicates: number; labels: number };
type Ctx = CsvOptions & { baseDir: string; file: string; header: string[] | null; labelCol: 0 | 1 };

/** The image value → its uri: local paths become absolute (resolved against the CSV's folder). */
function imageUri(v: string, baseDir: string): string {
  return uriKind(v) === 'path' ? path.resolve(baseDir, v) : v;
}

function checkImage(row: number, field: string, v: string, ctx: Ctx): void {
  if (ctx.checkImages === false) return;
  const kind = uriKind(v);
  if (kind !== 'path' && kind !== 'file-url') return;
  let p: string;
  try {
    p = localPath(v, ctx.baseDir)!;
  } catch (err) {
    throw new RowError(row, field, (err as Error).message);
  }
  if (!existsSync(p)) throw new RowError(row, field, `image file not found: ${p}`);
}

function pairDocs(rows: Row[], ctx: Ctx, bad: Sink): Built {
  // Column order where only one value is an image; rows where both look like images follow the
  // order most rows have.
  const cls = rows.map((r) => r.values.map((v) => looksLikeImage(v, ctx.baseDir)));
  let imgFirst = 0;
  let imgSecond = 0;
  for (const [a, b] of cls) {
    if (a && !b) imgFirst++;
    if (b && !a) imgSecond++;
  }
  type Pair = { row: number; text: string; image: string; imageCol: 0 | 1 };
  const pairs: Pair[] = [];
  rows.forEach((r, k) => {
    try {
      const [v0, v1] = r.values as [string, string];
      const [a, b] = cls[k]!;
      let imageCol: 0 | 1;
      if (!v0 && !v1) throw new RowError(r.row, 'text', 'empty row (both columns are empty)');
      if (!v0 || !v1) {
        const filled = v0 ? 0 : 1;
        if (!cls[k]![filled]) throw new RowError(r.row, 'image', `empty image (column ${filled === 0 ? 2 : 1})`);
        // An explicitly quoted "" is an empty caption (CLIP tokenizes it as sot, eot); a bare empty field is a missing one.
        if (!r.quoted[1 - filled]) throw new RowError(r.row, 'text', `empty caption (column ${2 - filled}); write "" for an intentionally empty caption`);
        imageCol = filled as 0 | 1;
      } else if (a !== b) imageCol = a ? 0 : 1;
      else if (a && b && imgFirst !== imgSecond) imageCol = imgFirst > imgSecond ? 0 : 1;
      else if (a && b) throw new RowError(r.row, 'image', `both values look like images and no other row tells the order: ${JSON.stringify(v0)}, ${JSON.stringify(v1)}`);
      else
        throw new RowError(
          r.row,
          'image',
          `neither value is an image (an http(s)/file/data:image URI, or a path ending in .png/.jpg/.jpeg/.webp/.gif): ${JSON.stringify(v0.slice(0, 80))}, ${JSON.stringify(v1.slice(0, 80))}` +
            (ctx.isLabeled === 'auto' ? '; labelled evaluation data needs a header naming its label column, e.g. text,label' : ''),
        );
      const image = r.values[imageCol]!;
      checkImage(r.row, 'image', image, ctx);
      pairs.push({ row: r.row, text: r.values[1 - imageCol]!, image: imageUri(image, ctx.baseDir), imageCol });
    } catch (e) {
      if (e instanceof RowError) bad(e);
      else throw e;
    }
  });

  const seen = new Set<string>();
  const kept: Pair[] = [];
  let duplicates = 0;
  for (const p of pairs) {
    const key = JSON.stringify([p.text, p.image]);
    if (seen.has(key)) duplicates++;
    else {
      seen.add(key);
      kept.push(p);
    }
  }
  const { labels, count } = componentLabels(kept);
  const docs = new DocumentArray(
    kept.map((p, k) => {
      const doc = labeledPair(p.text, p.image, labels[k]!);
      setOrigin(doc, { file: ctx.file, row: p.row, unit: 'row', fields: { image: columnName(ctx, p.imageCol, 'image'), text: columnName(ctx, 1 - p.imageCol, 'text'), label: 'label' } });
      return doc;
    }),
  );
  return { docs, duplicates, labels: count };
}

/** The header's name for a column, else `fallback`. */
const columnName = (ctx: Ctx, col: number, fallback: string): string => ctx.header?.[col] || fallback;

function labeledDocs(rows: Row[], ctx: Ctx, bad: Sink): Built {
  const docs = new DocumentArray();
  const labels = new Set<string>();
  const lc = ctx.labelCol;
  const ic = 1 - lc;
  const itemName = columnName(ctx, ic, 'item');
  const labelName = columnName(ctx, lc, 'label');
  // The item column's header decides the modality for every row; without one, each row's value does.
  const itemKey = ctx.header ? headerKey(ctx.header[ic]!) : '';
  const forced = TEXT_NAMES.has(itemKey) ? 'text' : IMAGE_NAMES.has(itemKey) ? 'image' : null;
  for (const r of rows) {
    try {
      const item = r.values[ic]!;
      const label = r.values[lc]!;
      if (!item) throw new RowError(r.row, itemName, `empty item (column ${ic + 1})`);
      if (!label) throw new RowError(r.row, labelName, `empty label (column ${lc + 1})`);
      const tags = { [LABEL_TAG]: label };
      let doc: Document;
      const isImage = forced ? forced === 'image' : looksLikeImage(item, ctx.baseDir);
      if (isImage) {
        if (imageSourceKind(item) === null) throw new RowError(r.row, itemName, `unsupported URI scheme: ${item.slice(0, 80)}`);
        checkImage(r.row, itemName, item, ctx);
        doc = new Document({ uri: imageUri(item, ctx.baseDir), modality: 'image', tags });
      } else doc = new Document({ text: item, modality: 'text', tags });
      setOrigin(doc, { file: ctx.file, row: r.row, unit: 'row', fields: { text: itemName, image: itemName, label: labelName } });
      docs.push(doc);
      labels.add(label);
    } catch (e) {
      if (e instanceof RowError) bad(e);
      else throw e;
    }
  }
  return { docs, duplicates: 0, labels: labels.size };
}
