// One resolver for images named by a string, wherever clipfit meets them (training and evaluation
// data, inference inputs, server requests): a file path (relative paths resolve against the folder
// of the list that names them: the CSV or JSONL file's), a file:// URL, an http(s):// URL
// (remote_fetch.ts) or a data: URI. It reads the bytes and checks by their magic bytes that they are
// an image clipfit decodes: PNG 89 50 4E 47 0D 0A 1A 0A, JPEG FF D8 FF, GIF "GIF87a"/"GIF89a",
// WebP "RIFF"<size>"WEBP" — never by name, extension or declared media type.
// Stricter callers (the server) narrow it by options: local files only inside a root folder
// (symlinks resolved) or none at all, remote fetches on or off, a size limit.
// Every failure is an ImageError naming the source; its kind says why: 'missing' (no such file,
// HTTP 404/410), 'unreadable' (other HTTP failures, timeouts, I/O), 'empty', 'unsupported' (not an
// image), 'corrupt' (a malformed data: URI), 'too-large', 'refused' (not allowed by the options, or
// an unknown scheme).

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ImageError, UriError } from '../errors.js';
import type { ImageErrorKind } from '../errors.js';
import { DEFAULT_MAX_URI_BYTES, fetchRemote } from './remote_fetch.js';
import type { RemoteFetchOptions } from './remote_fetch.js';
import { decodeDataUri, localPath, readLocal, uriKind } from './uri.js';

export type ImageType = 'png' | 'jpeg' | 'gif' | 'webp';

const ascii = (b: Uint8Array, at: number, s: string): boolean => [...s].every((c, i) => b[at + i] === c.charCodeAt(0));

/** The image type from the first bytes, or null. */
export function sniffImageType(b: Uint8Array): ImageType | null {
  if (b.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x)) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a'))) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'webp';
  return null;
}

export type ImageSourceKind = 'file' | 'http' | 'data';

/** How an image string is read; null for a scheme clipfit does not read (s3:, ftp:, …). */
export function imageSourceKind(uri: string): ImageSourceKind | null {
  const k = uriKind(uri);
  if (k === 'path' || k === 'file-url') return 'file';
  if (k === 'http' || k === 'data') return k;
  return null;
}

/** The source as errors name it: a data: URI is cut to its header and first characters. */
export function imageSourceName(uri: string): string {
  if (uri.length <= 120 || imageSourceKind(uri) !== 'data') return uri;
  return `${uri.slice(0, 64)}… (${uri.length} characters)`;
}

export interface ImageSourceOptions {
  /** Folder that relative paths resolve against: the folder of the list naming the image (default: the working directory). */
  baseDir?: string;
  /** Local files: any (true, the default), none (false), or only inside `root` (symlinks resolved; relative paths resolve against it). */
  local?: boolean | { root: string };
  /** http(s) URLs: fetched with these options (default {}), or refused (false). */
  remote?: false | RemoteFetchOptions;
  /** Largest image accepted, in bytes, whatever its source (default 64 MiB). */
  maxBytes?: number;
}

export interface ImageBytes {
  bytes: Uint8Array;
  type: ImageType;
  kind: ImageSourceKind;
}

/** The local file a path or file:// URL names, resolved against baseDir; null for other sources. */
export function localImagePath(uri: string, baseDir?: string): string | null {
  if (imageSourceKind(uri) !== 'file') return null;
  try {
    return localPath(uri, baseDir);
  } catch (err) {
    throw imageErrorOf(err as UriError, imageSourceName(uri));
  }
}

/** The bytes of the image `uri` names, checked to be a PNG, JPEG, WebP or GIF. */
export async function readImageSource(uri: string, opts: ImageSourceOptions = {}): Promise<ImageBytes> {
  const name = imageSourceName(uri);
  const kind = imageSourceKind(uri);
  const max = opts.maxBytes ?? DEFAULT_MAX_URI_BYTES;
  if (kind === null) throw new ImageError(name, 'refused', 'unknown URI scheme; images are read from file paths, file://, http(s):// and data: URIs');
  let bytes: Uint8Array;
  let mimeType: string | undefined;
  try {
    if (kind === 'data') {
      const d = decodeDataUri(uri);
      mimeType = d.mimeType;
      if (d.bytes.length > max) throw new ImageError(name, 'too-large', `${d.bytes.length} bytes, the limit is ${max}`);
      bytes = d.bytes;
    } else if (kind === 'http') {
      if (opts.remote === false) throw new ImageError(name, 'refused', 'http(s) URLs are not fetched here');
      bytes = await fetchRemote(uri, { ...opts.remote, maxBytes: Math.min(opts.remote?.maxBytes ?? max, max) });
    } else bytes = await readLocalImage(uri, name, opts, max);
  } catch (err) {
    if (err instanceof UriError) throw imageErrorOf(err, name);
    throw err;
  }
  if (bytes.length === 0) throw new ImageError(name, 'empty', 'zero bytes');
  const type = sniffImageType(bytes);
  if (!type) {
    const said = mimeType ? `; the data: URI says ${mimeType}` : '';
    throw new ImageError(name, 'unsupported', `not a PNG, JPEG, WebP or GIF image (checked by its first bytes${said})`);
  }
  return { bytes, type, kind };
}

/** Is `file` (already resolved through symlinks) inside `root`? */
const inside = (root: string, file: string): boolean => {
  const rel = path.relative(root, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

async function readLocalImage(uri: string, name: string, opts: ImageSourceOptions, max: number): Promise<Uint8Array> {
  const local = opts.local ?? true;
  if (local === false) throw new ImageError(name, 'refused', 'local files are not read here');
  if (local === true) return readLocal(uri, localPath(uri, opts.baseDir)!, max);
  const root = await fsp.realpath(local.root);
  const given = localPath(uri, root)!;
  let real: string;
  try {
    real = await fsp.realpath(given);
  } catch (err) {
    if (!inside(root, given)) throw new ImageError(name, 'refused', 'outside the allowed folder');
    throw new ImageError(name, 'missing', `no such file under the allowed folder: ${given}`, { cause: err });
  }
  if (!inside(root, real)) throw new ImageError(name, 'refused', 'outside the allowed folder');
  return readLocal(uri, real, max);
}

const KIND_OF_URI_ERROR: Record<UriError['kind'], ImageErrorKind> = {
  missing: 'missing',
  unreadable: 'unreadable',
  unsupported: 'refused',
  'bad-data-uri': 'corrupt',
  http: 'unreadable',
  timeout: 'unreadable',
  refused: 'refused',
  'too-large': 'too-large',
};

function imageErrorOf(err: UriError, name: string): ImageError {
  const kind = err.kind === 'http' && (err.status === 404 || err.status === 410) ? 'missing' : KIND_OF_URI_ERROR[err.kind];
  return new ImageError(name, kind, err.detail, { cause: err });
}
