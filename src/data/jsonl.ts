// JSON Lines training data: one object per line, either a pair
//   {"text": "...", "image": "path, file://, data:image/… or http(s) URL", "label"?: …, "tags"?: {…}}
// a labeled single item, as evaluation data has them (a text query or an index image and its label)
//   {"text": "...", "label": …}   or   {"image": "...", "label": …}
// or a full Document (docarray-style JSON: has any of id, chunks, uri, blob, tensor, modality, tags
// and no "image" key). Relative paths resolve against the file's folder. Pair labels: a line's "label" is its
// `finetuner_label`; when no pair line has one, labels come from shared captions and images as in the
// CSV loader (see pair_labels.ts); when some do, lines without one stay unlabeled. Blank lines are
// skipped; lines are counted 1-based as an editor shows them.

import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { DataError } from '../errors.js';
import { Document, DocumentArray, isObject, LABEL_TAG, typeName } from './document.js';
import type { SkippedRow } from './csv.js';
import { setOrigin } from './origin.js';
import type { Origin } from './origin.js';
import { componentLabels } from './pair_labels.js';
import { localPath, uriKind } from './uri.js';

export interface JsonlOptions {
  /** Skip bad lines and list them in stats.skipped instead of throwing (default false). */
  skipBadRows?: boolean;
  /** Check that local image files exist (default true). */
  checkImages?: boolean;
  /** Folder for relative paths (default: the file's folder). */
  baseDir?: string;
}

export interface JsonlStats {
  file: string;
  /** Non-blank lines read. */
  lines: number;
  docs: number;
  /** Skipped lines; `row` is the line number. */
  skipped: SkippedRow[];
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const DOC_KEYS = ['id', 'chunks', 'uri', 'blob', 'tensor', 'modality', 'embedding', 'matches', 'tags'];

class LineError extends Error {
  constructor(readonly line: number, readonly field: string | undefined, readonly reason: string) {
    super(reason);
  }
}

export async function loadJsonl(file: string, opts: JsonlOptions = {}): Promise<{ docs: DocumentArray; stats: JsonlStats }> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    throw new DataError(file, undefined, undefined, `cannot read: ${(err as Error).message}`, 'line', { cause: err });
  }
  const baseDir = opts.baseDir ?? path.dirname(path.resolve(file));
  const skipped: SkippedRow[] = [];
  const bad = (e: LineError) => {
    if (!opts.skipBadRows) throw new DataError(file, e.line, e.field, e.reason, 'line');
    skipped.push(e.field === undefined ? { row: e.line, reason: e.reason } : { row: e.line, field: e.field, reason: e.reason });
  };

  type Item = { doc: Document; pair?: { text: string; image: string }; explicitLabel: boolean; fields: Origin['fields'] };
  const items: Item[] = [];
  let lines = 0;
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let lineNo = 1; start < bytes.length; lineNo++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    try {
      let text: string;
      try {
        text = UTF8.decode(raw).trim();
      } catch {
        throw new LineError(lineNo, undefined, 'not valid UTF-8; save the file as UTF-8');
      }
      if (!text) continue;
      lines++;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new LineError(lineNo, undefined, `invalid JSON: ${(err as Error).message}`);
      }
      const item = parseLine(json, lineNo, baseDir, opts, `${file}:${lineNo}`);
      setOrigin(item.doc, { file, row: lineNo, unit: 'line', fields: item.fields });
      items.push(item);
    } catch (e) {
      if (e instanceof LineError) bad(e);
      else if (e instanceof DataError) {
        // Document.fromJSON names nested documents after the line, e.g. 'f.jsonl:3 chunks[1]'.
        const sub = e.file.slice(`${file}:${lineNo}`.length).trim();
        bad(new LineError(lineNo, sub ? `${sub}.${e.field ?? ''}`.replace(/\.$/, '') : e.field, e.detail));
      }
      else throw e;
    }
  }

  const pairs = items.filter((it) => it.pair);
  if (pairs.length && !pairs.some((it) => it.explicitLabel)) {
    const { labels } = componentLabels(pairs.map((it) => it.pair!));
    pairs.forEach((it, k) => setLabel(it.doc, labels[k]));
  }
  const docs = new DocumentArray(items.map((it) => it.doc));
  return { docs, stats: { file, lines, docs: docs.length, skipped } };

  function parseLine(json: unknown, line: number, base: string, o: JsonlOptions, where: string): Item {
    if (!isObject(json)) throw new LineError(line, undefined, `expected a JSON object, got ${typeName(json)}`);
    if (!('image' in json) && DOC_KEYS.some((k) => k in json)) {
      const doc = Document.fromJSON(json, where);
      resolveUris(doc, base, line, o);
      const ti = doc.chunks.findIndex((c) => c.modality === 'text');
      const ii = doc.chunks.findIndex((c) => c.modality === 'image');
      const fields = doc.chunks.length
        ? { text: ti >= 0 ? `chunks[${ti}].text` : 'text', image: ii >= 0 ? `chunks[${ii}].uri` : 'uri', label: `tags.${LABEL_TAG}` }
        : { text: 'text', image: 'uri', label: `tags.${LABEL_TAG}` };
      return { doc, explicitLabel: true, fields };
    }
    const text = json['text'];
    const image = json['image'];
    const label = json['label'];
    if (label !== undefined && typeof label !== 'string' && typeof label !== 'number') {
      throw new LineError(line, 'label', `must be a string or a number, got ${typeName(label)}`);
    }
    if (label !== undefined && (text === undefined) !== (image === undefined)) return labeledItem(json, line, base, o);
    if (typeof text !== 'string') throw new LineError(line, 'text', text === undefined ? 'missing' : `must be a string, got ${typeName(text)}`);
    if (!text.trim()) throw new LineError(line, 'text', 'empty caption');
    if (typeof image !== 'string')
      throw new LineError(line, 'image', image === undefined ? 'missing (a pair needs "text" and "image"; a labeled query or index item needs "label")' : `must be a string, got ${typeName(image)}`);
    if (!image.trim()) throw new LineError(line, 'image', 'empty');
    const uri = checkedUri(image.trim(), base, line, 'image', o);
    const tags = json['tags'];
    if (tags !== undefined && !isObject(tags)) throw new LineError(line, 'tags', `must be an object, got ${typeName(tags)}`);
    const rootTags: Record<string, unknown> = { ...(tags ?? {}) };
    const doc = new Document({ tags: rootTags, chunks: [{ text: text.trim(), modality: 'text' }, { uri, modality: 'image' }] });
    if (label !== undefined) setLabel(doc, label);
    return { doc, pair: { text: text.trim(), image: uri }, explicitLabel: label !== undefined, fields: { text: 'text', image: 'image', label: 'label' } };
  }

  /** {"text", "label"} or {"image", "label"}: one labeled Document. */
  function labeledItem(json: Record<string, unknown>, line: number, base: string, o: JsonlOptions): Item {
    const field = 'text' in json ? 'text' : 'image';
    const v = json[field];
    if (typeof v !== 'string') throw new LineError(line, field, `must be a string, got ${typeName(v)}`);
    if (!v.trim()) throw new LineError(line, field, 'empty');
    const label = json['label'] as string | number;
    if (label === '') throw new LineError(line, 'label', 'empty label');
    const tags = json['tags'];
    if (tags !== undefined && !isObject(tags)) throw new LineError(line, 'tags', `must be an object, got ${typeName(tags)}`);
    const allTags = { ...(tags ?? {}), [LABEL_TAG]: label };
    const doc =
      field === 'text'
        ? new Document({ text: v.trim(), modality: 'text', tags: allTags })
        : new Document({ uri: checkedUri(v.trim(), base, line, 'image', o), modality: 'image', tags: allTags });
    return { doc, explicitLabel: true, fields: { text: 'text', image: 'image', label: 'label' } };
  }
}

function setLabel(doc: Document, label: unknown): void {
  doc.tags[LABEL_TAG] = label;
  for (const c of doc.chunks) c.tags[LABEL_TAG] = label;
}

/** A path becomes absolute; a local file must exist when checking; other schemes pass through. */
function checkedUri(v: string, base: string, line: number, field: string, o: JsonlOptions): string {
  const kind = uriKind(v);
  if (kind === 'unsupported') throw new LineError(line, field, `unsupported URI scheme: ${v.slice(0, 80)}`);
  if (kind === 'data' && !/^data:image\//i.test(v)) throw new LineError(line, field, 'a data: URI must be data:image/…');
  if (kind !== 'path' && kind !== 'file-url') return v;
  let p: string;
  try {
    p = localPath(v, base)!;
  } catch (err) {
    throw new LineError(line, field, (err as Error).message);
  }
  if (o.checkImages !== false && !existsSync(p)) throw new LineError(line, field, `image file not found: ${p}`);
  return kind === 'path' ? p : v;
}

/** Relative paths of a Document and its chunks and matches become absolute; image files are checked. */
function resolveUris(doc: Document, base: string, line: number, o: JsonlOptions, field = 'uri'): void {
  if (doc.uri !== undefined && doc.blob === undefined) {
    const imageLike = doc.modality !== 'text';
    doc.uri = checkedUri(doc.uri, base, line, field, { ...o, checkImages: imageLike && o.checkImages !== false });
  } else if (doc.uri !== undefined && uriKind(doc.uri) === 'path') doc.uri = path.resolve(base, doc.uri);
  doc.chunks.forEach((c, i) => resolveUris(c, base, line, o, `chunks[${i}].uri`));
  doc.matches.forEach((m, i) => resolveUris(m, base, line, o, `matches[${i}].uri`));
}
