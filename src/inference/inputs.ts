// What each item handed to encode() means for the selected tower. clip-text takes captions: strings,
// Documents with `.text`, or text–image pairs (their text chunk). clip-vision takes images: paths or
// URIs as strings, Documents with a blob or uri, or pairs (their image chunk). Anything of the other
// modality is a ModalityError naming its index, found before any model runs.

import { existsSync } from 'node:fs';
import { Document, isPair, pairImage, pairText } from '../data/document.js';
import { imageSourceKind, localImagePath, readImageSource } from '../data/image_source.js';
import { hasImageExtension } from '../data/uri.js';
import { ModalityError } from '../errors.js';

export type Tower = 'clip-text' | 'clip-vision';

/** What encode() accepts. */
export type EncodeData = readonly Document[] | readonly string[];

/** An image to decode: a local file, bytes in memory, or a data:/http(s) URI read when its batch runs. */
export type ImageRef = { file: string } | { blob: Uint8Array } | { remote: string };

function describe(doc: Document): string {
  if (doc.uri !== undefined) return `uri ${JSON.stringify(doc.uri.length > 80 ? doc.uri.slice(0, 77) + '...' : doc.uri)}`;
  if (doc.blob !== undefined) return `a ${doc.blob.length}-byte blob`;
  if (doc.tensor !== undefined) return `a tensor of shape [${doc.shape ?? [doc.tensor.length]}]`;
  return `id ${doc.id}`;
}

const hasImage = (d: Document): boolean => d.blob !== undefined || d.uri !== undefined || d.tensor !== undefined;

/** The caption of item i for clip-text. */
export function textOf(item: string | Document, i: number): string {
  if (typeof item === 'string') return item;
  if (!(item instanceof Document)) throw new ModalityError(i, 'clip-text', `expected a string or a Document, got ${item === null ? 'null' : typeof item}`);
  if (typeof item.text === 'string') return item.text;
  if (isPair(item)) return pairText(item);
  if (hasImage(item) || item.modality === 'image')
    throw new ModalityError(i, 'clip-text', `is an image document (${describe(item)}); clip-text encodes text: select clip-vision for images`);
  throw new ModalityError(i, 'clip-text', `document ${item.id} has no text (and is not a text–image pair)`);
}

function refOfUri(uri: string, i: number): ImageRef {
  const kind = imageSourceKind(uri);
  if (kind === 'file') return { file: localImagePath(uri)! };
  if (kind === 'data' || kind === 'http') return { remote: uri };
  throw new ModalityError(i, 'clip-vision', `uri ${JSON.stringify(uri)} has an unsupported scheme (local paths, file://, data: and http(s):// are read)`);
}

/** The image of item i for clip-vision. */
export function imageOf(item: string | Document, i: number): ImageRef {
  if (typeof item === 'string') {
    const ref = refOfUri(item, i);
    // A caption handed to the image tower: no such file and no image extension.
    if ('file' in ref && !existsSync(ref.file) && !hasImageExtension(ref.file))
      throw new ModalityError(i, 'clip-vision', `${JSON.stringify(item)} is no image file or URI; clip-vision encodes images: select clip-text for captions`);
    return ref;
  }
  if (!(item instanceof Document)) throw new ModalityError(i, 'clip-vision', `expected an image path, URI or a Document, got ${item === null ? 'null' : typeof item}`);
  if (item.modality !== 'text') {
    if (item.blob !== undefined) return { blob: item.blob };
    if (item.uri !== undefined) return refOfUri(item.uri, i);
  }
  if (isPair(item)) return imageOf(pairImage(item), i);
  if (item.tensor !== undefined)
    throw new ModalityError(i, 'clip-vision', `holds only ${describe(item)}; give images as a uri or blob (encoded image bytes)`);
  if (typeof item.text === 'string' || item.modality === 'text')
    throw new ModalityError(i, 'clip-vision', `is a text document (id ${item.id}); clip-vision encodes images: select clip-text for text`);
  throw new ModalityError(i, 'clip-vision', `document ${item.id} has no image (no uri or blob, and is not a text–image pair)`);
}

/** A path or the bytes of an image, reading data:/http(s) URIs (checked to be images). */
export async function fetchImage(ref: ImageRef): Promise<string | Uint8Array> {
  if ('file' in ref) return ref.file;
  if ('blob' in ref) return ref.blob;
  return (await readImageSource(ref.remote)).bytes;
}
