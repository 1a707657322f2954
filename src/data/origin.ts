// Where a Document came from — the data file, its row (CSV, 1-based as a spreadsheet shows) or line
// (JSONL), and the names its text, image and label have there — so that a problem found later
// (an image URL that answers 404, a query without a label) is reported against the row the user
// wrote. Kept beside the Document (a WeakMap), not in its tags, so it never travels into saved data.

import { DataError, ImageError } from '../errors.js';
import type { Document } from './document.js';

export type OriginField = 'text' | 'image' | 'label';

export interface Origin {
  file: string;
  row?: number;
  unit?: 'row' | 'line';
  /** The record's names for the document's text, image and label (default: text, image, label). */
  fields?: Partial<Record<OriginField, string>>;
}

const origins = new WeakMap<Document, Origin>();

export function setOrigin(doc: Document, origin: Origin): void {
  origins.set(doc, origin);
}

export function originOf(doc: Document): Origin | undefined {
  return origins.get(doc);
}

/** A DataError about `doc`'s text, image or label, naming its file and row (or `fallback`, e.g.
 * 'queryData[3]', for a Document that came from no file). */
export function documentError(doc: Document, field: OriginField, detail: string, fallback: string, cause?: unknown): DataError {
  const o = origins.get(doc);
  const opts = cause === undefined ? undefined : { cause };
  if (!o) return new DataError(fallback, undefined, DEFAULT_NAMES[field], detail, 'row', opts);
  return new DataError(o.file, o.row, o.fields?.[field] ?? field, detail, o.unit ?? 'row', opts);
}

/** The names a field has on a Document that came from no file. */
const DEFAULT_NAMES: Record<OriginField, string> = { text: 'text', image: 'uri', label: 'tags.finetuner_label' };

/** An ImageError about one of `docs` (matched by its name) as a DataError naming the document's
 * file, row and image field; anything else unchanged. */
export function withRow(err: unknown, docs: readonly Document[], names: readonly string[]): unknown {
  if (!(err instanceof ImageError)) return err;
  const k = names.indexOf(err.file);
  if (k < 0) return err;
  return documentError(docs[k]!, 'image', err.message, `documents[${k}]`, err);
}
