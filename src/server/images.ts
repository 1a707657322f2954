// Images the server accepts and keeps. Types are told by magic bytes, never by name or declared
// content type: PNG 89 50 4E 47 0D 0A 1A 0A, JPEG FF D8 FF, GIF "GIF87a"/"GIF89a", WebP
// "RIFF"<size>"WEBP". Stored images live at <index>/images/<id>.<ext> (or, for an index in
// Postgres, in the database: pg_images.ts, the same ImageBlobs contract); ids are restricted to
// [A-Za-z0-9_.-] (no leading dot), so an id can never name a path outside that folder. Image URIs
// in requests: data: always; http(s) only when remote URIs are on, and then only from public
// addresses (the data layer's one image resolver, data/safe_fetch.ts); local paths only inside the
// configured root (resolved through symlinks), none by default.

import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import path from 'node:path';
import { imageSourceKind, readImageSource, sniffImageType } from '../data/image_source.js';
import type { ImageType } from '../data/image_source.js';
import { ImageError } from '../errors.js';
import { badRequest, HttpError, tooLarge, unsupportedMedia } from './http_errors.js';
import { RemoteFetchError } from '../data/safe_fetch.js';
import { syncDir } from '../search/index_files.js';

export type { ImageType };

export const CONTENT_TYPES: Record<ImageType, string> = { png: 'image/png', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };
const EXT: Record<ImageType, string> = { png: 'png', jpeg: 'jpg', gif: 'gif', webp: 'webp' };
const TYPE_OF_EXT: Record<string, ImageType> = { png: 'png', jpg: 'jpeg', gif: 'gif', webp: 'webp' };

/** The image type from the first bytes, or null. */
export const sniffImage = sniffImageType;

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

/** Where a server keeps the images it indexed: what /images/:id sends and a reindex encodes again. */
export interface ImageBlobs {
  /** Durable when it resolves; replaces an image of another type with the same id. */
  put(id: string, bytes: Uint8Array, type: ImageType): Promise<void>;
  /** The image to send, or null. */
  open(id: string): Promise<{ type: ImageType; body: Readable | Buffer } | null>;
  /** The image's bytes, or null. */
  read(id: string): Promise<Uint8Array | null>;
  remove(id: string): Promise<void>;
  /** Every stored id with its type, sorted by id. */
  list(): Promise<{ id: string; type: ImageType }[]>;
}

/** The stored images of an index: <dir>/<id>.<ext>. */
export class ImageStore implements ImageBlobs {
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

  async open(id: string): Promise<{ type: ImageType; body: Readable } | null> {
    const f = this.find(id);
    return f && { type: f.type, body: createReadStream(f.file) };
  }

  async read(id: string): Promise<Uint8Array | null> {
    const f = this.find(id);
    return f && new Uint8Array(await fsp.readFile(f.file));
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

/** The bytes of an image URI from a request, checked to be an image; `field` names it in errors. */
export async function readImageUri(uri: string, field: string, policy: UriPolicy): Promise<{ bytes: Uint8Array; type: ImageType }> {
  try {
    const r = await readImageSource(uri, {
      local: policy.allowedRoot ? { root: policy.allowedRoot } : false,
      remote: policy.allowRemote ? { timeoutMs: 10_000, publicOnly: policy.allowAddresses ? { allowAddresses: policy.allowAddresses } : {} } : false,
      maxBytes: policy.maxBytes,
    });
    return { bytes: r.bytes, type: r.type };
  } catch (err) {
    if (err instanceof ImageError) throw httpErrorOf(err, uri, field, policy);
    throw err;
  }
}

/** The status a refused or unreadable request image gets: 400 for what the policy refuses, 413 too
 * large, 415 not an image, 422 an image that cannot be read. */
function httpErrorOf(err: ImageError, uri: string, field: string, policy: UriPolicy): HttpError {
  const shown = JSON.stringify(uri.length > 80 ? uri.slice(0, 80) : uri);
  const kind = imageSourceKind(uri);
  // One answer for every failed fetch (refused address, 404, timeout, not an image), so the fetch
  // cannot be used to probe what answers where; the detail stays in err for the log.
  if (kind === 'http' && policy.allowRemote) return new HttpError(422, 'unprocessable', `${field}: ${new RemoteFetchError('').message}`);
  switch (err.kind) {
    case 'refused': {
      if (kind === 'http') return badRequest(`${field}: http(s) URIs are off on this server (start it with --allow-remote-uris); upload the image or send a data: URI`);
      if (kind === 'file' && !policy.allowedRoot)
        return badRequest(`${field}: local file URIs are disabled on this server (start it with --allow-root DIR); upload the image or send a data: URI`);
      if (kind === 'file') return badRequest(`${field}: ${shown} is outside the allowed root`);
      return badRequest(`${field}: unsupported URI ${shown} (data:, http(s):// or a path under the allowed root)`);
    }
    case 'too-large':
      return tooLarge(`${field}: ${err.detail}`);
    case 'unsupported':
      return unsupportedMedia(`${field} is not a PNG, JPEG, WebP or GIF image (checked by its first bytes)`);
    default:
      return new HttpError(422, 'unprocessable', `${field}: ${err.message}`);
  }
}
