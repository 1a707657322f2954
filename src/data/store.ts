// Named datasets in a local store, the stand-in for Finetuner's cloud push/pull:
//   $CLIPFIT_HOME (default ~/.cache/clipfit) /datasets/<name>/v<N>/{docs.jsonl, meta.json, images/}
// push copies every image's bytes (from a blob, a path, file://, data: or http(s)) into images/,
// named by their sha256, so a version is self-contained and moves as a folder; docs.jsonl holds one
// Document JSON per line with image uris relative to the version folder (pull makes them absolute).
// meta.json: {format, name, version, count, images, bytes, created, sha256}. sha256 is over the
// documents' canonical JSON (keys sorted, ids left out, images as their content-addressed names), so
// it names the content: ids are not content, and the same images reached by other paths hash alike.
// Versions: a push whose sha256 equals the latest version's returns that version (created: false);
// other content becomes v<N+1>: nothing is ever replaced unless `overwrite: true`, which replaces the
// latest version in place (same N). Writes go to a `.tmp-*` folder next to the versions and are
// renamed into place, so a push that fails or is killed never leaves a half-written v<N>; folders
// that are not `v<N>` with a meta.json are ignored. Two pushes racing for one N: the loser takes N+1.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClipfitError, DatasetError } from '../errors.js';
import { Document, DocumentArray } from './document.js';
import type { DocumentJson } from './document.js';
import { loadJsonl } from './jsonl.js';
import { hasImageExtension, loadUriToBlob } from './uri.js';
import type { LoadUriOptions } from './uri.js';

export const DATASET_FORMAT = 'clipfit-dataset/1';

export interface StoreOptions {
  /** Store root (default $CLIPFIT_HOME or ~/.cache/clipfit). */
  home?: string;
  /** Environment to read CLIPFIT_HOME from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface PushOptions extends StoreOptions, LoadUriOptions {
  /** Replace the latest version in place instead of adding v<N+1> (default false). */
  overwrite?: boolean;
}

export interface DatasetMeta {
  format: string;
  name: string;
  version: number;
  count: number;
  /** Distinct image files stored. */
  images: number;
  /** Their total size. */
  bytes: number;
  created: string;
  sha256: string;
}

export interface PushResult {
  name: string;
  version: number;
  dir: string;
  /** False when the content equals the latest version's and nothing was written. */
  created: boolean;
  meta: DatasetMeta;
}

export interface DatasetListing {
  name: string;
  versions: number[];
  latest: DatasetMeta;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function storeHome(opts: StoreOptions = {}): string {
  const env = opts.env ?? process.env;
  return path.resolve(opts.home ?? env['CLIPFIT_HOME'] ?? path.join(os.homedir(), '.cache', 'clipfit'));
}

export const datasetsRoot = (opts: StoreOptions = {}): string => path.join(storeHome(opts), 'datasets');

function checkName(name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new DatasetError(
      String(name),
      'bad name: 1–100 letters, digits, ".", "_" or "-", starting with a letter or digit (no path separators or "..")',
    );
  }
}

function checkVersion(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new DatasetError(name, `bad version ${v}: versions are 1, 2, 3, …`);
}

/** Versions of a dataset that are complete (v<N> folders holding meta.json), ascending. */
async function versionsOf(dir: string): Promise<number[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: number[] = [];
  for (const e of entries) {
    const m = /^v([1-9][0-9]*)$/.exec(e.name);
    if (m && e.isDirectory() && existsSync(path.join(dir, e.name, 'meta.json'))) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

async function readMeta(name: string, version: number, file: string): Promise<DatasetMeta> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as DatasetMeta;
  } catch (err) {
    throw new DatasetError(name, `cannot read ${file}: ${(err as Error).message}`, version, { cause: err });
  }
}

/** JSON with keys sorted at every level: the canonical form hashed for sha256. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function withoutIds(j: DocumentJson): Record<string, unknown> {
  const { id: _id, chunks, matches, ...rest } = j;
  const out: Record<string, unknown> = { ...rest };
  if (chunks) out['chunks'] = chunks.map(withoutIds);
  if (matches) out['matches'] = matches.map(withoutIds);
  return out;
}

/** File extension from the bytes' magic number, else the uri's image extension, else .bin. */
function imageExt(bytes: Uint8Array, uri?: string): string {
  const b = bytes;
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return '.png';
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return '.jpg';
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38) return '.gif';
  if (b.length >= 12 && Buffer.from(b.subarray(0, 4)).toString('latin1') === 'RIFF' && Buffer.from(b.subarray(8, 12)).toString('latin1') === 'WEBP') return '.webp';
  if (uri && !uri.startsWith('data:')) {
    const ext = path.extname(new URL(uri, 'file:///').pathname).toLowerCase();
    if (hasImageExtension(`x${ext}`)) return ext === '.jpeg' ? '.jpg' : ext;
  }
  return '.bin';
}

/** Push `docs` as dataset `name`; see the header for versioning. */
export async function push(name: string, docs: Iterable<Document>, opts: PushOptions = {}): Promise<PushResult> {
  checkName(name);
  const dsDir = path.join(datasetsRoot(opts), name);
  await fsp.mkdir(dsDir, { recursive: true });
  const tmp = path.join(dsDir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(path.join(tmp, 'images'), { recursive: true });
  try {
    const stored = new Map<string, number>(); // image file → size
    const lines: string[] = [];
    const hash = createHash('sha256');
    let count = 0;

    // The stored JSON of one Document: images become files, blobs leave the JSON.
    const storeDoc = async (doc: Document, where: string): Promise<DocumentJson> => {
      const j = doc.toJSON();
      if (doc.modality !== 'text' && (doc.blob !== undefined || doc.uri !== undefined)) {
        let bytes: Uint8Array;
        try {
          bytes = doc.blob ?? (await loadUriToBlob(doc.uri!, opts));
        } catch (err) {
          const msg = err instanceof ClipfitError ? err.message : String(err);
          throw new DatasetError(name, `${where}: cannot store its image: ${msg}`, undefined, { cause: err });
        }
        const file = `images/${createHash('sha256').update(bytes).digest('hex')}${imageExt(bytes, doc.uri)}`;
        if (!stored.has(file)) {
          stored.set(file, bytes.length);
          await fsp.writeFile(path.join(tmp, file), bytes);
        }
        j.uri = file;
        delete j.blob;
      }
      if (doc.chunks.length) j.chunks = await Promise.all(doc.chunks.map((c, i) => storeDoc(c, `${where} chunks[${i}]`)));
      if (doc.matches.length) j.matches = await Promise.all(doc.matches.map((m, i) => storeDoc(m, `${where} matches[${i}]`)));
      return j;
    };

    for (const doc of docs) {
      const j = await storeDoc(doc, `document ${count} (id ${doc.id})`);
      lines.push(JSON.stringify(j));
      hash.update(canonical(withoutIds(j)) + '\n');
      count++;
    }
    const sha256 = hash.digest('hex');
    await fsp.writeFile(path.join(tmp, 'docs.jsonl'), lines.length ? lines.join('\n') + '\n' : '');

    for (let attempt = 0; ; attempt++) {
      const versions = await versionsOf(dsDir);
      const latest = versions.at(-1);
      if (latest !== undefined) {
        const meta = await readMeta(name, latest, path.join(dsDir, `v${latest}`, 'meta.json'));
        if (meta.sha256 === sha256) return { name, version: latest, dir: path.join(dsDir, `v${latest}`), created: false, meta };
      }
      const replace = opts.overwrite === true && latest !== undefined;
      const version = replace ? latest! : (latest ?? 0) + 1;
      const bytes = [...stored.values()].reduce((a, b) => a + b, 0);
      const meta: DatasetMeta = { format: DATASET_FORMAT, name, version, count, images: stored.size, bytes, created: new Date().toISOString(), sha256 };
      await fsp.writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
      const dest = path.join(dsDir, `v${version}`);
      try {
        if (replace) await replaceDir(tmp, dest);
        else await fsp.rename(tmp, dest);
        return { name, version, dir: dest, created: true, meta };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const lost = code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EPERM';
        if (!lost || attempt >= 10) throw new DatasetError(name, `cannot write ${dest}: ${(err as Error).message}`, version, { cause: err });
        // Another push took this number first (or left an incomplete folder): go again.
        if (!existsSync(path.join(dest, 'meta.json'))) throw new DatasetError(name, `${dest} exists but is not a complete version; remove it`, version);
      }
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/** Swap `src` in for `dest`: the old folder is moved aside, then removed. */
async function replaceDir(src: string, dest: string): Promise<void> {
  const old = `${path.dirname(dest)}/.old-${randomBytes(6).toString('hex')}`;
  await fsp.rename(dest, old);
  try {
    await fsp.rename(src, dest);
  } catch (err) {
    await fsp.rename(old, dest);
    throw err;
  }
  await fsp.rm(old, { recursive: true, force: true });
}

async function resolveVersion(name: string, version: number | undefined, opts: StoreOptions): Promise<{ dir: string; version: number }> {
  checkName(name);
  const dsDir = path.join(datasetsRoot(opts), name);
  const versions = await versionsOf(dsDir);
  if (!versions.length) throw new DatasetError(name, `not found in ${datasetsRoot(opts)}`);
  if (version === undefined) version = versions.at(-1)!;
  checkVersion(name, version);
  if (!versions.includes(version)) throw new DatasetError(name, `no such version (have ${versions.map((v) => `v${v}`).join(', ')})`, version);
  return { dir: path.join(dsDir, `v${version}`), version };
}

/** The meta.json of a version (default: the latest). */
export async function datasetInfo(name: string, opts: StoreOptions & { version?: number } = {}): Promise<DatasetMeta> {
  const { dir, version } = await resolveVersion(name, opts.version, opts);
  return readMeta(name, version, path.join(dir, 'meta.json'));
}

/** The documents of a version (default: the latest), image uris as absolute paths into the store. */
export async function pull(name: string, opts: StoreOptions & { version?: number } = {}): Promise<DocumentArray> {
  const { dir, version } = await resolveVersion(name, opts.version, opts);
  const meta = await readMeta(name, version, path.join(dir, 'meta.json'));
  const { docs } = await loadJsonl(path.join(dir, 'docs.jsonl'), { checkImages: true });
  if (docs.length !== meta.count) throw new DatasetError(name, `docs.jsonl holds ${docs.length} documents, meta.json says ${meta.count}`, version);
  return docs;
}

/** Every dataset with at least one complete version, by name. */
export async function listDatasets(opts: StoreOptions = {}): Promise<DatasetListing[]> {
  const root = datasetsRoot(opts);
  const entries = await fsp.readdir(root, { withFileTypes: true }).catch(() => []);
  const out: DatasetListing[] = [];
  for (const e of entries.filter((e) => e.isDirectory() && NAME_RE.test(e.name)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const versions = await versionsOf(path.join(root, e.name));
    if (!versions.length) continue;
    const latest = versions.at(-1)!;
    out.push({ name: e.name, versions, latest: await readMeta(e.name, latest, path.join(root, e.name, `v${latest}`, 'meta.json')) });
  }
  return out;
}

/** Delete one version, or (without `version`) the whole dataset. Moved aside first, then removed. */
export async function deleteDataset(name: string, version?: number, opts: StoreOptions = {}): Promise<void> {
  checkName(name);
  const dsDir = path.join(datasetsRoot(opts), name);
  const target = version === undefined ? dsDir : (await resolveVersion(name, version, opts)).dir;
  if (version === undefined && !existsSync(dsDir)) throw new DatasetError(name, `not found in ${datasetsRoot(opts)}`);
  const aside = path.join(path.dirname(target), `.del-${path.basename(target)}-${randomBytes(6).toString('hex')}`);
  await fsp.rename(target, aside);
  await fsp.rm(aside, { recursive: true, force: true });
}
