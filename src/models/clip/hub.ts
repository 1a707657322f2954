// Model resolution and download: `name::tag` → a local model folder in the cache, fetched from a
// Hugging Face–style hub ({base}/{repo}/resolve/{revision}/{file}) when it is not there yet.
//   cache:    $CLIPFIT_HOME (default ~/.cache/clipfit) /models/<repo>/<revision>/<file>
//   transfer: into <file>.part; a broken transfer resumes with `Range: bytes=<part size>-`
//   check:    sha256 of the whole file against the registry's digest, else the hub's
//             X-Linked-Etag/ETag when that is a sha256 (LFS files); a mismatch deletes the bytes
//   commit:   rename <file>.part → <file> (atomic); open_clip folders get open_clip_config.json
//             written from the registry last, so a folder with its config is complete
//   offline:  CLIPFIT_OFFLINE=1 (or the option) reads the cache only

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChecksumError, ConfigError, DownloadError, OfflineError, UnknownModelError } from '../../errors.js';
import { detectLayout, OPEN_CLIP_CONFIG } from './checkpoint.js';
import { toOpenClipConfigJson } from './config.js';
import type { PretrainedFile, PretrainedSpec, RegistryExtension } from './registry.js';
import { defaultRegistry, ModelRegistry, parseModelId, shippedModelDir } from './registry.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface DownloadProgress {
  /** `name::tag`. */
  model: string;
  repo: string;
  file: string;
  /** Bytes of the file on disk so far (a resumed part counts). */
  received: number;
  /** Full size when the server says, else null. */
  total: number | null;
  done: boolean;
}

export interface ResolveOptions {
  /** Cache root (default $CLIPFIT_HOME or ~/.cache/clipfit). */
  home?: string;
  /** Hub base URL (default $CLIPFIT_HUB_URL or https://huggingface.co). http:// only for loopback hosts. */
  hubUrl?: string;
  /** Use only the cache (default: $CLIPFIT_OFFLINE is 1/true). */
  offline?: boolean;
  /** Extra models and tags on top of the built-in registry and $CLIPFIT_REGISTRY, or a registry to use as is. */
  registry?: RegistryExtension | ModelRegistry;
  onProgress?: (p: DownloadProgress) => void;
  /** Resumed attempts after a broken transfer (default 3). */
  retries?: number;
  /** Bearer token for the hub (default $HF_TOKEN); never sent to another origin. */
  token?: string;
  signal?: AbortSignal;
  /** Environment to read CLIPFIT_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

const isLoopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '::1';

function checkUrl(raw: string, field: string): URL {
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

function homeDir(opts: ResolveOptions, env: NodeJS.ProcessEnv): string {
  return path.resolve(opts.home ?? env['CLIPFIT_HOME'] ?? path.join(os.homedir(), '.cache', 'clipfit'));
}

/** The cache folder of one repository revision. */
export function cacheDirFor(repo: string, revision: string, home: string): string {
  return path.join(home, 'models', ...repo.split('/'), revision);
}

/** The built-in registry plus $CLIPFIT_REGISTRY (a JSON RegistryExtension file) plus the option. */
export function hubRegistry(opts: ResolveOptions = {}): ModelRegistry {
  if (opts.registry instanceof ModelRegistry) return opts.registry;
  const env = opts.env ?? process.env;
  const r = defaultRegistry().clone();
  const file = env['CLIPFIT_REGISTRY'];
  if (file) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError('CLIPFIT_REGISTRY', `cannot read ${file}: ${(err as Error).message}`, file);
    }
    r.extend(json as RegistryExtension, file);
  }
  if (opts.registry) r.extend(opts.registry, 'options.registry');
  return r;
}

const fileName = (f: string | PretrainedFile) => (typeof f === 'string' ? f : f.name);

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

function missingFiles(dir: string, spec: PretrainedSpec): string[] {
  const need = spec.files.map(fileName);
  if (spec.layout === 'open_clip') need.push(OPEN_CLIP_CONFIG);
  return [...new Set(need)].filter((f) => !existsSync(path.join(dir, f)));
}

async function hashFile(file: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
}

async function removeEmptyDirs(dir: string, stopAt: string): Promise<void> {
  let d = dir;
  while (d.startsWith(stopAt + path.sep) && d !== stopAt) {
    try {
      await fsp.rmdir(d);
    } catch {
      return;
    }
    d = path.dirname(d);
  }
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
      throw new DownloadError(u, `request failed: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err });
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

/**
 * Download `url` to `dest` through `dest.part`, resuming a part left by an earlier try, checking
 * the sha256 when one is known. On a checksum mismatch the part is deleted and ChecksumError thrown.
 */
export async function downloadFile(
  url: string,
  dest: string,
  opts: { sha256?: string; retries?: number; token?: string; signal?: AbortSignal; onProgress?: (received: number, total: number | null, done: boolean) => void } = {},
): Promise<{ sha256: string; bytes: number }> {
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
      const detail = `HTTP ${res.status} ${res.statusText}`.trim();
      if (res.status >= 500 && attempt < retries) {
        lastErr = detail;
        continue;
      }
      throw new DownloadError(url, detail);
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
      if (opts.signal?.aborted) throw new DownloadError(url, 'aborted', { cause: err });
      lastErr = err instanceof BrokenTransfer ? err.message : `transfer broke at ${received} bytes: ${(err as Error).message}`;
      continue;
    }
    await fh.close();
    const digest = hash.digest('hex');
    const expected = opts.sha256 ?? linkedSha;
    if (expected && digest !== expected) {
      await fsp.rm(part, { force: true });
      throw new ChecksumError(url, path.basename(dest), expected, digest);
    }
    await fsp.rename(part, dest);
    opts.onProgress?.(received, total ?? received, true);
    return { sha256: digest, bytes: received };
  }
  throw new DownloadError(url, `${lastErr} (gave up after ${retries + 1} tries; the partial file is kept and resumes next time)`);
}

/**
 * A model folder for `name::tag` (downloaded into the cache if needed) or for a folder path
 * (checked to be a model folder). Returns the absolute folder path.
 */
export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const id = parseModelId(spec);
  if (!id) {
    if (existsSync(spec) && statSync(spec).isDirectory()) {
      detectLayout(spec);
      return path.resolve(spec);
    }
    const reg = hubRegistry(opts);
    const entry = reg.models.get(spec);
    if (entry) {
      const tags = [...entry.pretrained.keys()].map((t) => `${spec}::${t}`);
      throw new UnknownModelError(spec, `name a pretrained tag as name::tag${tags.length ? ` (${tags.join(', ')})` : ''}, or give a model folder`);
    }
    throw new UnknownModelError(spec, "neither a model folder nor a known 'name::tag'");
  }
  const reg = hubRegistry(opts);
  const { spec: pre, config } = reg.pretrained(id.name, id.tag);
  if (pre.shipped) {
    const shipped = shippedModelDir(pre.shipped);
    if (!existsSync(path.join(shipped, OPEN_CLIP_CONFIG))) throw new UnknownModelError(spec, `the shipped model folder ${shipped} is missing from this installation`);
    return shipped;
  }
  const revision = pre.revision ?? 'main';
  const home = homeDir(opts, env);
  const dir = cacheDirFor(pre.repo, revision, home);
  let missing = missingFiles(dir, pre);
  if (missing.length === 0) return dir;

  const offline = opts.offline ?? ['1', 'true', 'yes'].includes((env['CLIPFIT_OFFLINE'] ?? '').toLowerCase());
  if (offline) throw new OfflineError(spec, dir, `offline mode and ${missing.join(', ')} not in the cache; run once online or point to a model folder`);

  const base = checkUrl(opts.hubUrl ?? env['CLIPFIT_HUB_URL'] ?? DEFAULT_HUB_URL, opts.hubUrl ? 'hubUrl' : 'CLIPFIT_HUB_URL').href;
  const token = opts.token ?? env['HF_TOKEN'];
  for (const f of pre.files) {
    const name = fileName(f);
    if (existsSync(path.join(dir, name))) continue;
    const url = fileUrl(base, pre.repo, revision, name);
    try {
      await downloadFile(url, path.join(dir, name), {
        ...(typeof f === 'object' && f.sha256 ? { sha256: f.sha256 } : {}),
        ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
        ...(token ? { token } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        onProgress: (received, total, done) => opts.onProgress?.({ model: spec, repo: pre.repo, file: name, received, total, done }),
      });
    } catch (err) {
      if (err instanceof ChecksumError) await removeEmptyDirs(path.dirname(path.join(dir, name)), path.join(home, 'models'));
      throw err;
    }
  }
  if (pre.layout === 'open_clip' && !existsSync(path.join(dir, OPEN_CLIP_CONFIG))) {
    const tmp = path.join(dir, `.${OPEN_CLIP_CONFIG}.${process.pid}.tmp`);
    await fsp.writeFile(tmp, JSON.stringify(toOpenClipConfigJson(config), null, 2) + '\n');
    await fsp.rename(tmp, path.join(dir, OPEN_CLIP_CONFIG));
  }
  missing = missingFiles(dir, pre);
  if (missing.length) throw new DownloadError(fileUrl(base, pre.repo, revision, missing[0]!), 'file still missing after download');
  detectLayout(dir);
  return dir;
}
