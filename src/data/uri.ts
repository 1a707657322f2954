// Reading a Document's uri into bytes (docarray's `load_uri_to_blob`): a local path (relative to
// `baseDir`), a file:// URL, a data: URI (base64 or percent-encoded), or http(s):// through Node's
// fetch with a timeout and a size cap (remote_fetch.ts). Every failure is a UriError naming the URI.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UriError } from '../errors.js';
import { Document } from './document.js';
import { DEFAULT_MAX_URI_BYTES, DEFAULT_URI_TIMEOUT_MS, fetchRemote } from './remote_fetch.js';

export { DEFAULT_MAX_URI_BYTES, DEFAULT_URI_TIMEOUT_MS };

export interface LoadUriOptions {
  /** Folder that relative paths are resolved against (default: the working directory). */
  baseDir?: string;
  /** Give up on an http(s) request after this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Refuse anything larger (default 64 MiB). */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** File extensions read as images (lower case, with the dot). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.gif'];

export const hasImageExtension = (p: string): boolean => IMAGE_EXTENSIONS.includes(path.extname(p).toLowerCase());

export type UriKind = 'http' | 'data' | 'file-url' | 'path' | 'unsupported';

/** How a uri is read: a scheme of two or more letters other than http(s)/data/file is unsupported
 * (one letter is a Windows drive, e.g. C:\x). */
export function uriKind(uri: string): UriKind {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri);
  if (!m || m[1]!.length === 1) return 'path';
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'http' || scheme === 'https') return 'http';
  if (scheme === 'data') return 'data';
  if (scheme === 'file') return 'file-url';
  return 'unsupported';
}

/** The local file a path or file:// uri names, resolved against baseDir; null for other kinds. */
export function localPath(uri: string, baseDir?: string): string | null {
  const kind = uriKind(uri);
  if (kind === 'path') return path.resolve(baseDir ?? process.cwd(), uri);
  if (kind === 'file-url') {
    try {
      return fileURLToPath(uri);
    } catch (err) {
      throw new UriError(uri, 'unsupported', `not a valid file:// URL: ${(err as Error).message}`, { cause: err });
    }
  }
  return null;
}

/** Decode a data: URI → bytes and its media type (RFC 2397: `data:[<type>][;base64],<data>`). */
export function decodeDataUri(uri: string): { bytes: Uint8Array; mimeType: string } {
  const comma = uri.indexOf(',');
  if (comma < 0) throw new UriError(uri, 'bad-data-uri', "no ',' between the header and the data");
  const meta = uri.slice(5, comma).split(';');
  const base64 = meta[meta.length - 1]!.toLowerCase() === 'base64';
  const mimeType = meta[0] || 'text/plain';
  const body = uri.slice(comma + 1);
  if (base64) {
    const clean = decodeURIComponentSafe(uri, body).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new UriError(uri, 'bad-data-uri', 'the data is not base64');
    return { bytes: new Uint8Array(Buffer.from(clean, 'base64')), mimeType };
  }
  return { bytes: new Uint8Array(Buffer.from(decodeURIComponentSafe(uri, body), 'latin1')), mimeType };
}

/** Percent-decoding to bytes-as-latin1, so %FF stays one byte 0xFF (decodeURIComponent would need UTF-8). */
function decodeURIComponentSafe(uri: string, s: string): string {
  if (/%(?![0-9a-fA-F]{2})/.test(s)) throw new UriError(uri, 'bad-data-uri', 'bad percent-escape');
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * The bytes behind `docOrUri` (a uri, or a Document's uri). When given a Document, its `blob` is set
 * (and a data: URI's media type goes to `mimeType`). A Document without a uri but with a blob
 * returns that blob.
 */
export async function loadUriToBlob(docOrUri: Document | string, opts: LoadUriOptions = {}): Promise<Uint8Array> {
  const doc = typeof docOrUri === 'string' ? undefined : docOrUri;
  const uri = typeof docOrUri === 'string' ? docOrUri : docOrUri.uri;
  if (uri === undefined) {
    if (doc?.blob) return doc.blob;
    throw new UriError('', 'missing', `document ${doc?.id} has no uri`);
  }
  const max = opts.maxBytes ?? DEFAULT_MAX_URI_BYTES;
  const kind = uriKind(uri);
  let bytes: Uint8Array;
  if (kind === 'unsupported') {
    throw new UriError(uri, 'unsupported', 'only local paths, file://, data: and http(s):// are read');
  } else if (kind === 'data') {
    const d = decodeDataUri(uri);
    if (d.bytes.length > max) throw new UriError(uri, 'too-large', `${d.bytes.length} bytes, the limit is ${max}`);
    bytes = d.bytes;
    if (doc) doc.mimeType = d.mimeType;
  } else if (kind === 'http') {
    bytes = await fetchRemote(uri, { timeoutMs: opts.timeoutMs, maxBytes: max, signal: opts.signal });
  } else {
    bytes = await readLocal(uri, localPath(uri, opts.baseDir)!, max);
  }
  if (doc) doc.blob = bytes;
  return bytes;
}

/** The bytes of a local file; `uri` (as given) names it in errors. */
export async function readLocal(uri: string, file: string, max: number): Promise<Uint8Array> {
  let st;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UriError(uri, 'missing', `no such file: ${file}`, { cause: err });
    throw new UriError(uri, 'unreadable', `${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile()) throw new UriError(uri, 'unreadable', `${file} is not a regular file`);
  if (st.size > max) throw new UriError(uri, 'too-large', `${st.size} bytes, the limit is ${max}`);
  try {
    return new Uint8Array(await fsp.readFile(file));
  } catch (err) {
    throw new UriError(uri, 'unreadable', `${file}: ${(err as Error).message}`, { cause: err });
  }
}
