// Evaluation data as Finetuner has it, for clipfit eval and the EvaluationCallback alike: query and
// index Documents, each side encoded by one tower (clip-text for the queries and clip-vision for the
// index by default). A side may hold
//   - text–image pairs: the tower takes the pair's text or image; a pair without a label is
//     relevant to the pair at its own position (so a set matched against itself counts a caption's
//     own image), as fit() has always scored it;
//   - single labelled Documents: text Documents (queries) or image Documents (index), from JSONL
//     Document lines or {"text"|"image", "label"} lines, a CSV with a label column, or a
//     DocumentArray given in TypeScript; these are relevant by `tags.finetuner_label` only, so a
//     missing label is an error.
// Labels are compared as strings (a CSV's "3" and a JSON 3 are the same label). A Document the
// tower cannot take, without a needed label, or whose image URL or data: URI cannot be read is a
// DataError naming its file, row and field — or, with skipBadRows, skipped and counted.

import { Document, DocumentArray, LABEL_TAG, isPair, pairImage, pairText } from '../data/index.js';
import type { DocumentJson } from '../data/index.js';
import { fetchRemoteImages, imageDocOf, imageInputOf, imageName } from '../data/doc_images.js';
import { documentError, withRow } from '../data/origin.js';
import type { OriginField } from '../data/origin.js';
import { DataError, ImageError } from '../errors.js';
import { decodeImage } from '../models/clip/image/preprocess.js';
import { loadDocuments } from '../data/source.js';
import type { SkippedRecord } from '../data/source.js';

export type Tower = 'clip-text' | 'clip-vision';

/** Evaluation data: a data spec (CSV, JSONL, folder, dataset:NAME[@vN]), or Documents (a
 * DocumentArray, or their JSON as a detached run receives them). */
export type EvalData = string | readonly Document[] | readonly DocumentJson[];

export interface EvalSide {
  docs: Document[];
  labels: string[];
  ids: string[];
  /** clip-text: the texts to encode. */
  texts: string[];
  /** clip-vision: what the decoder is given (bytes, or a path) and the name errors give it. */
  images: { inputs: (string | Uint8Array)[]; names: string[] };
  /** Documents skipped as bad (with skipBadRows). */
  skipped: SkippedRecord[];
}

export interface EvalSets {
  query: EvalSide;
  index: EvalSide;
}

export interface LoadEvalOptions {
  queryTower?: Tower;
  indexTower?: Tower;
  skipBadRows?: boolean;
  /** Names the two inputs in errors (default 'queryData' and 'indexData'). */
  fields?: { query: string; index: string };
}

/** Load and check both sides; data given twice (the same spec or array) is loaded once. */
export async function loadEvalSets(queryData: EvalData, indexData: EvalData, opts: LoadEvalOptions = {}): Promise<EvalSets> {
  const fields = opts.fields ?? { query: 'queryData', index: 'indexData' };
  const q = await loadEvalDocs(queryData, fields.query, opts.skipBadRows);
  const x = indexData === queryData ? { docs: q.docs, skipped: [] } : await loadEvalDocs(indexData, fields.index, opts.skipBadRows);
  const query = await selectSide(q.docs, opts.queryTower ?? 'clip-text', 'query', nameOf(queryData, fields.query), opts.skipBadRows);
  const index = await selectSide(x.docs, opts.indexTower ?? 'clip-vision', 'index', nameOf(indexData, fields.index), opts.skipBadRows);
  query.skipped.unshift(...q.skipped);
  index.skipped.unshift(...x.skipped);
  return { query, index };
}

const nameOf = (data: EvalData, field: string): string => (typeof data === 'string' ? data : field);

async function loadEvalDocs(data: EvalData, field: string, skipBadRows?: boolean): Promise<{ docs: Document[]; skipped: SkippedRecord[] }> {
  if (typeof data === 'string') {
    const r = await loadDocuments(data, { skipBadRows, field, labeled: 'auto' });
    return { docs: [...r.docs], skipped: r.skipped };
  }
  if (!Array.isArray(data)) throw new DataError(field, undefined, undefined, 'must be a data file, folder, dataset:NAME or an array of Documents');
  const docs = data.every((d) => d instanceof Document) ? [...(data as Document[])] : [...DocumentArray.fromJSON(data, field)];
  return { docs, skipped: [] };
}

function labelFor(doc: Document, i: number, role: 'query' | 'index'): string {
  const raw = doc.tags[LABEL_TAG] ?? (isPair(doc) ? pairImage(doc).tags[LABEL_TAG] : undefined);
  if (raw === undefined || raw === null || raw === '') {
    if (isPair(doc)) return `q${i}`;
    const other = role === 'query' ? 'index' : 'query';
    throw new SideError('label', `no label: ${role} documents that are not text–image pairs are relevant to the ${other} documents of the same ${LABEL_TAG}; give each one a label`);
  }
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new SideError('label', `the label must be a string or a number, got ${JSON.stringify(raw)}`);
  return String(raw);
}

class SideError extends Error {
  constructor(readonly field: OriginField, readonly detail: string) {
    super(detail);
  }
}

async function selectSide(docs: readonly Document[], tower: Tower, role: 'query' | 'index', where: string, skipBadRows?: boolean): Promise<EvalSide> {
  const skipped: SkippedRecord[] = [];
  const bad = (doc: Document, i: number, field: OriginField, detail: string, cause?: unknown): void => {
    const e = documentError(doc, field, detail, `${where}[${i}]`, cause);
    if (!skipBadRows) throw e;
    skipped.push({ file: e.file, unit: e.unit, row: e.row ?? i + 1, ...(e.field !== undefined ? { field: e.field } : {}), reason: detail });
  };
  const kept: Document[] = [];
  const labels = new Map<Document, string>();
  docs.forEach((doc, i) => {
    try {
      if (tower === 'clip-text') {
        const hasText = isPair(doc) || (typeof doc.text === 'string' && doc.modality !== 'image');
        if (!hasText) throw new SideError('text', `${role} document has no text for clip-text` + (imageDocOf(doc) ? ' (it is an image document)' : ''));
      } else if (!imageDocOf(doc)) {
        throw new SideError('image', `${role} document has no image for clip-vision (no uri or blob)` + (typeof doc.text === 'string' ? ' (it is a text document)' : ''));
      }
      labels.set(doc, labelFor(doc, i, role));
      kept.push(doc);
    } catch (e) {
      if (e instanceof SideError) bad(doc, i, e.field, e.detail);
      else throw e;
    }
  });
  let usable = kept;
  if (tower === 'clip-vision') {
    const fetched = await fetchRemoteImages(kept, { skipBadRows, where });
    usable = fetched.docs;
    skipped.push(...fetched.skipped);
  }
  if (usable.length === 0) throw new DataError(where, undefined, undefined, `holds no ${role} documents for ${tower}` + (tower === 'clip-vision' ? ' (image Documents or text–image pairs)' : ' (text Documents or text–image pairs)'));
  return {
    docs: usable,
    labels: usable.map((d) => labels.get(d)!),
    ids: usable.map((d) => d.id),
    texts: tower === 'clip-text' ? usable.map((d) => (isPair(d) ? pairText(d) : d.text!)) : [],
    images: tower === 'clip-vision' ? { inputs: usable.map((d) => imageInputOf(d)!), names: usable.map(imageName) } : { inputs: [], names: [] },
    skipped,
  };
}

/**
 * An image failure while encoding a side, reported against its Document's file and row. A decoder
 * error names a path as given, but bytes only as '<buffer>': then the side's byte inputs are decoded
 * one by one, each under its own name, to find the one that fails.
 */
export async function imageFailure(err: unknown, side: EvalSide): Promise<unknown> {
  if (!(err instanceof ImageError)) return err;
  if (side.images.names.includes(err.file)) return withRow(err, side.docs, side.images.names);
  for (let k = 0; k < side.docs.length; k++) {
    const input = side.images.inputs[k]!;
    if (typeof input === 'string') continue;
    const e = await decodeImage(input, { name: side.images.names[k]! }).then(() => null, (x: unknown) => x);
    if (e instanceof ImageError) return withRow(e, side.docs, side.images.names);
  }
  return err;
}
