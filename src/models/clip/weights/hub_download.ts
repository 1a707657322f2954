// HTTP downloads from a Hugging Face–style hub: {base}/{repo}/resolve/{revision}/{file}.
//   transfer: into <file>.part; a broken transfer resumes with `Range: bytes=<part size>-`
//   check:    sha256 of the whole file against the given digest, else the hub's LFS metadata
//             (X-Linked-Etag, or an ETag that is a sha256); a mismatch deletes the bytes
//   commit:   rename <file>.part → <file> (atomic)
//   redirects are followed by hand, so the hub's X-Linked-* headers are seen and a token never
//   leaves the hub's origin.

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ChecksumError, ConfigError, DownloadError } from '../../../errors.js';

export const isLoopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '::1';

export function checkUrl(raw: string, field: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(field, `not a URL: ${JSON.stringify(raw)}`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && isLoopback(u.hostname)) return u;
  throw new ConfigError(field, `must be https:// (http:// only for 127.0.0.1), got ${raw}`);
}

/** The URL of a file in a repository revision. */
export function fileUrl(base: string, repo: string, revision: string, file: string): string {
  const b = base.replace(/\/+$/, '');
  return `${b}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** sha256 hex from an ETag / X-Linked-Etag value, when it is one (LFS files); git blob ids (40 hex) are not. */
export function etagSha256(v: string | null): string | undefined {
  if (!v) return undefined;
  const s = v.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(s) ? s : undefined;
}

async function hashFile(file: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
}

interface Fetched {
  res: Response;
  /** Digest and size the hub announced (on the first response, before any redirect). */
  linkedSha?: string;
  linkedSize?: number;
}

/** GET with manual redirects, so the hub's X-Linked-* headers are seen and the token stays on the hub's origin. */
async function get(url: string, headers: Record<string, string>, token: string | undefined, signal?: AbortSignal): Promise<Fetched> {
  const origin = new URL(url).origin;
  let u = url;
  let linkedSha: string | undefined;
  let linkedSize: number | undefined;
  for (let hop = 0; hop < 6; hop++) {
    const h: Record<string, string> = { ...headers, 'user-agent': 'clipfit' };
    if (token && new URL(u).origin === origin) h['authorization'] = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(u, { headers: h, redirect: 'manual', ...(signal ? { signal } : {}) });
    } catch (err) {
      throw new DownloadError(u, `request failed: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err, resumable: true });
    }
    linkedSha ??= etagSha256(res.headers.get('x-linked-etag')) ?? etagSha256(res.headers.get('etag'));
    const ls = res.headers.get('x-linked-size');
    if (linkedSize === undefined && ls && /^\d+$/.test(ls)) linkedSize = Number(ls);
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      const next = new URL(res.headers.get('location')!, u);
      checkUrl(next.href, `redirect from ${u}`);
      u = next.href;
      continue;
    }
    return { res, ...(linkedSha ? { linkedSha } : {}), ...(linkedSize !== undefined ? { linkedSize } : {}) };
  }
  throw new DownloadError(url, 'too many redirects');
}

class BrokenTransfer extends Error {}

export interface DownloadOptions {
  /** Expected sha256 (hex); else the hub's LFS digest when it announces one. */
  sha256?: string;
  /** Resumed attempts after a broken transfer (default 3). */
  retries?: number;
  token?: string;
  signal?: AbortSignal;
  /** A file the repository may lack: a 404 for it (not for the repository) returns null. */
  optional?: boolean;
  onProgress?: (received: number, total: number | null, done: boolean) => void;
}

/** What the hub says about a 4xx, for the message. */
function httpDetail(res: Response): string {
  const code = res.headers.get('x-error-code');
  let d = `HTTP ${res.status} ${res.statusText}`.trim() + (code ? ` (${code})` : '');
  if (res.status === 401 || res.status === 403) d += ': the repository is private, gated or does not exist; set HF_TOKEN to a token that may read it';
  return d;
}

/**
 * Download `url` to `dest` through `dest.part`, resuming a part left by an earlier try, checking
 * the sha256 when one is known. On a checksum mismatch the part is deleted and ChecksumError thrown.
 * Returns null only for an optional file the repository does not hold.
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<{ sha256: string; bytes: number } | null> {
  const part = `${dest}.part`;
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const retries = opts.retries ?? 3;
  let lastErr = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    let offset = existsSync(part) ? statSync(part).size : 0;
    const { res, linkedSha, linkedSize } = await get(url, offset > 0 ? { range: `bytes=${offset}-` } : {}, opts.token, opts.signal);
    if (res.status === 416) {
      // The part is as long as (or longer than) the file: start over.
      await res.body?.cancel();
      await fsp.rm(part, { force: true });
      lastErr = 'range not satisfiable; restarted';
      continue;
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      const code = res.headers.get('x-error-code');
      if (res.status === 404 && opts.optional && code !== 'RepoNotFound' && code !== 'RevisionNotFound') return null;
      const detail = httpDetail(res);
      if (res.status >= 500 && attempt < retries) {
        lastErr = detail;
        continue;
      }
      throw new DownloadError(url, detail, { resumable: res.status >= 500 });
    }
    if (res.status === 206) {
      const cr = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!cr || Number(cr[1]) !== offset) {
        await res.body?.cancel();
        throw new DownloadError(url, `server answered range ${offset}- with Content-Range ${JSON.stringify(res.headers.get('content-range'))}`);
      }
    } else if (offset > 0) {
      offset = 0; // the server ignored the range: the whole file follows
    }
    const len = res.headers.get('content-length');
    const total = len && /^\d+$/.test(len) ? offset + Number(len) : (linkedSize ?? null);
    const hash = createHash('sha256');
    if (offset > 0) await hashFile(part, hash);
    const fh = await fsp.open(part, offset > 0 ? 'a' : 'w');
    let received = offset;
    try {
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          await fh.write(chunk);
          hash.update(chunk);
          received += chunk.length;
          opts.onProgress?.(received, total, false);
        }
      }
      if (total !== null && received !== total) throw new BrokenTransfer(`connection closed at ${received} of ${total} bytes`);
    } catch (err) {
      await fh.close();
      if (opts.signal?.aborted) throw new DownloadError(url, 'aborted', { cause: err, resumable: true });
      lastErr = err instanceof BrokenTransfer ? err.message : `transfer broke at ${received} bytes: ${(err as Error).message}`;
      continue;
    }
    await fh.close();
    const digest = hash.digest('hex');
    if (linkedSize !== undefined && received !== linkedSize) {
      // A response that ended cleanly but short of the size the hub's LFS metadata gives: the file
      // behind it is truncated, and resuming cannot mend that.
      await fsp.rm(part, { force: true });
      throw new DownloadError(url, `truncated: got ${received} bytes, the hub's LFS metadata says ${linkedSize}`);
    }
    const expected = opts.sha256 ?? linkedSha;
    if (expected && digest !== expected) {
      await fsp.rm(part, { force: true });
      throw new ChecksumError(url, decodeURIComponent(new URL(url).pathname.split('/').pop() ?? path.basename(dest)), expected, digest);
    }
    await fsp.rename(part, dest);
    opts.onProgress?.(received, total ?? received, true);
    return { sha256: digest, bytes: received };
  }
  throw new DownloadError(url, `${lastErr} (gave up after ${retries + 1} tries; the partial file is kept and resumes next time)`, { resumable: true });
}

