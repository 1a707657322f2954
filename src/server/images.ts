// Images the server accepts and keeps. Types are told by magic bytes, never by name or declared
// content type: PNG 89 50 4E 47 0D 0A 1A 0A, JPEG FF D8 FF, GIF "GIF87a"/"GIF89a", WebP
// "RIFF"<size>"WEBP". Stored images live at <index>/images/<id>.<ext>; ids are restricted to
// [A-Za-z0-9_.-] (no leading dot), so an id can never name a path outside that folder. Image URIs
// in requests: data: always; http(s) only when remote URIs are on, and then only from public
// addresses (remote_fetch.ts); local paths only inside the configured root (resolved through
// symlinks), none by default.

import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { loadUriToBlob, localPath, uriKind } from '../data/uri.js';
import { badRequest, HttpError, tooLarge, unsupportedMedia } from './http_errors.js';
import { RemoteFetchError, safeFetch } from './remote_fetch.js';
import { syncDir } from '../search/index_files.js';

export type ImageType = 'png' | 'jpeg' | 'gif' | 'webp';

export const CONTENT_TYPES: Record<ImageType, string> = { png: 'image/png', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };
const EXT: Record<ImageType, string> = { png: 'png', jpeg: 'jpg', gif: 'gif', webp: 'webp' };
const TYPE_OF_EXT: Record<string, ImageType> = { png: 'png', jpg: 'jpeg', gif: 'gif', webp: 'webp' };

const ascii = (b: Uint8Array, at: number, s: string): boolean => [...s].every((c, i) => b[at + i] === c.charCodeAt(0));

/** The image type from the first bytes, or null. */
export function sniffImage(b: Uint8Array): ImageType | null {
  if (b.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x)) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a'))) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'webp';
  return null;
}

/** The type of `bytes`, or 415 naming `what`. */
export function requireImage(bytes: Uint8Array, what: string): ImageType {
  const t = sniffImage(bytes);
  if (!t) throw unsupportedMedia(`${what} is not a PNG, JPEG, WebP or GIF image (checked by its first bytes)`);
  return t;
}

export const ID_PATTERN = '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$';
const ID_RE = new RegExp(ID_PATTERN);

export const isSafeId = (id: string): boolean => ID_RE.test(id);

export function checkId(id: unknown, field: string): string {
  if (typeof id !== 'string' || !isSafeId(id)) throw badRequest(`${field}: ids are 1–128 characters of A-Z a-z 0-9 _ . - and do not start with '.', got ${JSON.stringify(id)}`);
  return id;
}

export const newId = (): string => randomBytes(8).toString('hex');

/** The stored images of an index: <dir>/<id>.<ext>. */
export class ImageStore {
  constructor(readonly dir: string) {}

  private file(id: string, type: ImageType): string {
    return path.join(this.dir, `${checkId(id, 'id')}.${EXT[type]}`);
  }

  /**
   * Write durably before the add is acknowledged: a temporary file, fsync'd, renamed into place, the
   * folder fsync'd (else a crash can leave the name pointing at nothing, or at nothing yet written).
   * Replaces an image of another type with the same id.
   */
  async put(id: string, bytes: Uint8Array, type: ImageType): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    const dest = this.file(id, type);
    const tmp = path.join(this.dir, `.${id}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, dest);
    for (const t of Object.keys(CONTENT_TYPES) as ImageType[]) if (t !== type) await fsp.rm(this.file(id, t), { force: true });
    await syncDir(this.dir);
  }

  /** Path and type of the stored image, or null. */
  find(id: string): { file: string; type: ImageType } | null {
    if (!isSafeId(id)) return null;
    for (const t of Object.keys(CONTENT_TYPES) as ImageType[]) {
      const f = this.file(id, t);
      if (existsSync(f)) return { file: f, type: t };
    }
    return null;
  }

  async remove(id: string): Promise<void> {
    for (const t of Object.keys(CONTENT_TYPES) as ImageType[]) await fsp.rm(this.file(id, t), { force: true });
  }

  /** Every stored id with its file, sorted by id. */
  async list(): Promise<{ id: string; file: string; type: ImageType }[]> {
    if (!existsSync(this.dir)) return [];
    const out: { id: string; file: string; type: ImageType }[] = [];
    for (const f of (await fsp.readdir(this.dir)).sort()) {
      const m = /^(.+)\.(png|jpg|gif|webp)$/.exec(f);
      if (m && isSafeId(m[1]!)) out.push({ id: m[1]!, file: path.join(this.dir, f), type: TYPE_OF_EXT[m[2]!]! });
    }
    return out;
  }
}

export interface UriPolicy {
  /** Local paths and file:// URIs are read only inside this folder; undefined: never. */
  allowedRoot?: string;
  /** Fetch http(s) URIs (default false). */
  allowRemote?: boolean;
  /** Addresses remote fetches may reach although private or loopback (tests, a known internal host). */
  allowAddresses?: readonly string[];
  maxBytes: number;
}

/** Is `file` (already resolved through symlinks) inside `root`? */
const inside = (root: string, file: string): boolean => {
  const rel = path.relative(root, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/** The bytes of an image URI from a request, checked to be an image; `field` names it in errors. */
export async function readImageUri(uri: string, field: string, policy: UriPolicy): Promise<{ bytes: Uint8Array; type: ImageType }> {
  const kind = uriKind(uri);
  let bytes: Uint8Array;
  if (kind === 'data') bytes = await loadUriToBlob(uri, { maxBytes: policy.maxBytes });
  else if (kind === 'http') {
    if (!policy.allowRemote) throw badRequest(`${field}: http(s) URIs are off on this server (start it with --allow-remote-uris); upload the image or send a data: URI`);
    // One answer for every failure, so the fetch cannot be used to probe what answers where.
    const fetchFailed = () => new HttpError(422, 'unprocessable', `${field}: ${new RemoteFetchError('').message}`);
    try {
      bytes = await safeFetch(uri, { maxBytes: policy.maxBytes, timeoutMs: 10_000, ...(policy.allowAddresses ? { allowAddresses: policy.allowAddresses } : {}) });
    } catch (err) {
      if (err instanceof RemoteFetchError) throw fetchFailed();
      throw err;
    }
    if (!sniffImage(bytes)) throw fetchFailed();
  } else if (kind === 'path' || kind === 'file-url') {
    if (!policy.allowedRoot) throw badRequest(`${field}: local file URIs are disabled on this server (start it with --allow-root DIR); upload the image or send a data: URI`);
    const root = await fsp.realpath(policy.allowedRoot);
    const given = kind === 'path' ? path.resolve(root, uri) : localPath(uri)!;
    let real: string;
    try {
      real = await fsp.realpath(given);
    } catch {
      if (!inside(root, given)) throw badRequest(`${field}: ${JSON.stringify(uri)} is outside the allowed root`);
      throw new HttpError(422, 'unprocessable', `${field}: no such file ${JSON.stringify(uri)} under the allowed root`);
    }
    if (!inside(root, real)) throw badRequest(`${field}: ${JSON.stringify(uri)} is outside the allowed root`);
    bytes = await loadUriToBlob(real, { maxBytes: policy.maxBytes });
  } else throw badRequest(`${field}: unsupported URI ${JSON.stringify(uri.slice(0, 80))} (data:, http(s):// or a path under the allowed root)`);
  if (bytes.length > policy.maxBytes) throw tooLarge(`${field}: ${bytes.length} bytes, the limit is ${policy.maxBytes}`);
  return { bytes, type: requireImage(bytes, field) };
}
