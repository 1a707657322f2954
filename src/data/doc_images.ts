// The image of a Document (a pair's image chunk, or an image Document itself) and reading the
// remote ones before training or evaluation starts. http(s) and data: images are read once through
// the image resolver and kept as the chunk's `blob` (encoded bytes: small beside the decoded pixels),
// so a URL that answers 404 or a data: URI that is not an image is found before the first step and
// reported against its file, row and field — or skipped and counted with skipBadRows — instead of
// failing a worker mid-epoch. Local files are left to be read when their batch is decoded.

import { ImageError } from '../errors.js';
import { Document, isPair, pairImage } from './document.js';
import { imageSourceKind, imageSourceName, readImageSource } from './image_source.js';
import type { ImageSourceOptions } from './image_source.js';
import { documentError } from './origin.js';
import type { SkippedRow } from './csv.js';

/** The Document holding doc's image: its image chunk when it is a pair, itself when it is an image
 * Document (a uri or blob, not marked text); null when it has none. */
export function imageDocOf(doc: Document): Document | null {
  if (isPair(doc)) return pairImage(doc);
  if (doc.modality !== 'text' && (doc.blob !== undefined || doc.uri !== undefined)) return doc;
  return null;
}

/** The name of doc's image in errors and for the decoder: its uri, else a name for its bytes. */
export function imageName(doc: Document): string {
  const img = imageDocOf(doc) ?? doc;
  return img.uri !== undefined ? imageSourceName(img.uri) : `<blob of document ${doc.id}>`;
}

/** What the image decoder is given for doc: the bytes when held, else the uri. */
export function imageInputOf(doc: Document): string | Uint8Array | null {
  const img = imageDocOf(doc);
  if (!img) return null;
  return img.blob ?? img.uri ?? null;
}

export interface FetchImagesOptions extends ImageSourceOptions {
  /** Skip documents whose image cannot be read, listing them, instead of throwing (default false). */
  skipBadRows?: boolean;
  /** Images read at a time (default 8). */
  concurrency?: number;
  /** Names documents without a file of origin in errors: `${where}[i]`. */
  where?: string;
}

export interface FetchImagesResult {
  /** The documents kept, in order. */
  docs: Document[];
  /** The documents skipped, by their row (line) when they came from a file. */
  skipped: (SkippedRow & { file: string; unit: 'row' | 'line' })[];
}

/**
 * Read the http(s) and data: images of `docs` into their blobs, checked to be images. A failure is a
 * DataError naming the document's file, row and image field, with the ImageError as its cause.
 */
export async function fetchRemoteImages(docs: readonly Document[], opts: FetchImagesOptions = {}): Promise<FetchImagesResult> {
  const bad = new Map<number, { file: string; unit: 'row' | 'line'; row: number; field?: string; reason: string }>();
  const todo = docs
    .map((d, i) => [i, imageDocOf(d)] as const)
    .filter(([, img]) => img && img.blob === undefined && img.uri !== undefined && imageSourceKind(img.uri) !== 'file');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      const [i, img] = todo[next++]!;
      try {
        img!.blob = (await readImageSource(img!.uri!, opts)).bytes;
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
        const e = documentError(docs[i]!, 'image', err.message, `${opts.where ?? 'documents'}[${i}]`, err);
        if (!opts.skipBadRows) throw e;
        bad.set(i, { file: e.file, unit: e.unit, row: e.row ?? i + 1, ...(e.field !== undefined ? { field: e.field } : {}), reason: err.message });
      }
    }
  };
  // The first failure (in document order, so the error does not depend on timing) is reported.
  const results = await Promise.allSettled(Array.from({ length: Math.min(opts.concurrency ?? 8, todo.length) }, worker));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as { row?: number });
  if (failed.length) throw failed.sort((a, b) => (a.row ?? 0) - (b.row ?? 0))[0];
  return { docs: docs.filter((_, i) => !bad.has(i)), skipped: [...bad.entries()].sort(([a], [b]) => a - b).map(([, s]) => s) };
}
