// The files of a folder index and the durable-write primitives under them:
//   meta.json      {format, dim, model, metric, created, hnsw}, rewritten by temp + fsync + rename;
//                  hnsw: the graph parameters the index was built and is searched with (hnsw_graph.ts;
//                  absent in indexes of earlier versions, which were built with LEGACY_HNSW)
//   snapshot.bin   "CFIXSNP1" | u32 header length | u32 crc | header JSON {generation, dim, model,
//                  count} | slots records (records.ts); written whole to a temp file and renamed
//   log.bin        "CFIXLOG1" | u32 generation | u32 crc of those 12 bytes | records, appended and
//                  fsync'd before a write is acknowledged
//   hnsw.usearch + hnsw.json {generation, size, connectivity, expansionAdd, precision}: the saved
//                  HNSW graph, valid for that snapshot and those build parameters
//   LOCK.<n>       who holds the folder open (index_lock.ts)
// A log whose generation is older than the snapshot's was already folded into it (a compaction
// died between the snapshot rename and the log reset) and is discarded.

import { promises as fsp, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CorruptIndexError } from '../errors.js';
import { crc32 } from './crc32.js';
import { hnswParams, LEGACY_HNSW } from './hnsw_graph.js';
import type { HnswParams } from './hnsw_graph.js';
import { FRAME_BYTES, MAX_PAYLOAD } from './records.js';

export const INDEX_FORMAT = 'clipfit-vector-index/1';
export const LOG_MAGIC = 'CFIXLOG1';
export const SNAP_MAGIC = 'CFIXSNP1';
export const LOG_HEADER_BYTES = 16;

export const files = (dir: string) => ({
  meta: path.join(dir, 'meta.json'),
  snapshot: path.join(dir, 'snapshot.bin'),
  log: path.join(dir, 'log.bin'),
  graph: path.join(dir, 'hnsw.usearch'),
  graphMeta: path.join(dir, 'hnsw.json'),

});

export interface IndexMeta {
  format: string;
  dim: number;
  model: string;
  metric: 'cosine';
  created: string;
  hnsw?: HnswParams;
}

/** fsync a directory so a rename or create in it is durable (a no-op where the OS refuses). */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic there.
  } finally {
    await fh?.close();
  }
}

export async function writeAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Write `file` whole: temp file, fsync, rename over, fsync the folder. */
export async function atomicWrite(file: string, chunks: readonly Uint8Array[] | ((fh: FileHandle) => Promise<void>)): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  try {
    if (typeof chunks === 'function') await chunks(fh);
    else {
      let at = 0;
      for (const c of chunks) {
        await writeAll(fh, c, at);
        at += c.length;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  await syncDir(path.dirname(file));
}

export function readMeta(file: string): IndexMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CorruptIndexError(file, `not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const m = raw as Partial<IndexMeta>;
  if (raw === null || typeof raw !== 'object') throw new CorruptIndexError(file, 'is not a JSON object');
  if (m.format !== INDEX_FORMAT) throw new CorruptIndexError(file, `format is ${JSON.stringify(m.format)}, expected '${INDEX_FORMAT}'`);
  if (!Number.isInteger(m.dim) || m.dim! < 1) throw new CorruptIndexError(file, `dim must be a positive integer, got ${JSON.stringify(m.dim)}`);
  if (typeof m.model !== 'string') throw new CorruptIndexError(file, `model must be a string, got ${JSON.stringify(m.model)}`);
  let hnsw: HnswParams | undefined;
  if (m.hnsw !== undefined) {
    if (m.hnsw === null || typeof m.hnsw !== 'object') throw new CorruptIndexError(file, `hnsw must be an object, got ${JSON.stringify(m.hnsw)}`);
    try {
      hnsw = hnswParams(LEGACY_HNSW, m.hnsw);
    } catch (err) {
      throw new CorruptIndexError(file, (err as Error).message, { cause: err });
    }
  }
  return { format: m.format, dim: m.dim!, model: m.model, metric: 'cosine', created: typeof m.created === 'string' ? m.created : '', ...(hnsw ? { hnsw } : {}) };
}

export const writeMeta = (file: string, meta: IndexMeta): Promise<void> => atomicWrite(file, [Buffer.from(JSON.stringify(meta, null, 2) + '\n')]);

export function logHeader(generation: number): Buffer {
  const b = Buffer.alloc(LOG_HEADER_BYTES);
  b.write(LOG_MAGIC, 0, 'latin1');
  b.writeUInt32LE(generation, 8);
  b.writeUInt32LE(crc32(b.subarray(0, 12)), 12);
  return b;
}

export async function readLogGeneration(fh: FileHandle, file: string): Promise<number> {
  const b = Buffer.alloc(LOG_HEADER_BYTES);
  const { bytesRead } = await fh.read(b, 0, LOG_HEADER_BYTES, 0);
  if (bytesRead < LOG_HEADER_BYTES || b.toString('latin1', 0, 8) !== LOG_MAGIC || b.readUInt32LE(12) !== crc32(b.subarray(0, 12)))
    throw new CorruptIndexError(file, `bad log header (expected '${LOG_MAGIC}', generation and crc in the first ${LOG_HEADER_BYTES} bytes)`);
  return b.readUInt32LE(8);
}

export type Framed = { ok: true; payload: Buffer; next: number } | { ok: false; why: string; next: number | null };

/** The record at `pos`: its payload, or why it does not check out (and where it would end, if framed). */
export async function readFramed(fh: FileHandle, pos: number, end: number): Promise<Framed> {
  if (end - pos < FRAME_BYTES) return { ok: false, why: `${end - pos} bytes left, a record header needs ${FRAME_BYTES}`, next: null };
  const head = Buffer.alloc(FRAME_BYTES);
  await fh.read(head, 0, FRAME_BYTES, pos);
  const len = head.readUInt32LE(0);
  if (len === 0 || len > MAX_PAYLOAD) return { ok: false, why: `record length ${len} out of range`, next: null };
  if (pos + FRAME_BYTES + len > end) return { ok: false, why: `record of ${len} bytes runs past the end of the file`, next: null };
  const payload = Buffer.alloc(len);
  await fh.read(payload, 0, len, pos + FRAME_BYTES);
  const next = pos + FRAME_BYTES + len;
  if (crc32(payload) !== head.readUInt32LE(4)) return { ok: false, why: 'crc mismatch', next };
  return { ok: true, payload, next };
}

/**
 * The first offset after `pos` from which good records (framed, crc correct) run exactly to `end`,
 * or null. A torn tail — the one write that was never acknowledged, cut short — has none: whatever
 * follows a bad record inside it is a fragment. Intact records after a bad one mean damage to
 * acknowledged data. Lengths are chained first (from the end backwards, in memory) so crcs are
 * computed only along chains that land exactly on `end`.
 */
export async function intactSuffix(fh: FileHandle, pos: number, end: number): Promise<number | null> {
  const n = end - pos;
  if (n <= FRAME_BYTES) return null;
  const buf = Buffer.alloc(n);
  await fh.read(buf, 0, n, pos);
  // lands[i]: the chain of frame lengths from pos+i ends exactly at end.
  const lands = new Uint8Array(n + 1);
  lands[n] = 1;
  for (let i = n - FRAME_BYTES; i >= 1; i--) {
    const len = buf.readUInt32LE(i);
    const q = i + FRAME_BYTES + len;
    if (len > 0 && len <= MAX_PAYLOAD && q <= n && lands[q]) lands[i] = 1;
  }
  const verified = new Map<number, boolean>();
  const good = (i: number): boolean => {
    const chain: number[] = [];
    let ok = true;
    for (let at = i; at < n; at += FRAME_BYTES + buf.readUInt32LE(at)) {
      const known = verified.get(at);
      if (known !== undefined) {
        ok = known;
        break;
      }
      chain.push(at);
      const len = buf.readUInt32LE(at);
      if (crc32(buf.subarray(at + FRAME_BYTES, at + FRAME_BYTES + len)) !== buf.readUInt32LE(at + 4)) {
        ok = false;
        break;
      }
    }
    // A chain is good only if every record on it is: a failure marks the records before it bad.
    for (const at of chain) verified.set(at, ok);
    return ok;
  };
  for (let i = 1; i < n; i++) if (lands[i] && good(i)) return pos + i;
  return null;
}

/** The next offset at or after `from` where one good record (framed, crc correct) starts, or null. */
export async function nextGoodRecord(fh: FileHandle, from: number, end: number): Promise<number | null> {
  const n = end - from;
  if (n <= FRAME_BYTES) return null;
  const buf = Buffer.alloc(n);
  await fh.read(buf, 0, n, from);
  for (let i = 0; i + FRAME_BYTES < n; i++) {
    const len = buf.readUInt32LE(i);
    if (len === 0 || len > MAX_PAYLOAD || i + FRAME_BYTES + len > n) continue;
    if (crc32(buf.subarray(i + FRAME_BYTES, i + FRAME_BYTES + len)) === buf.readUInt32LE(i + 4)) return from + i;
  }
  return null;
}

export interface SnapshotHeader {
  generation: number;
  dim: number;
  model: string;
  count: number;
  /** One past the highest slot (holes included); absent in snapshots of earlier versions. */
  slots?: number;
}

export function snapshotHead(h: SnapshotHeader): Buffer {
  const json = Buffer.from(JSON.stringify(h));
  const b = Buffer.alloc(16);
  b.write(SNAP_MAGIC, 0, 'latin1');
  b.writeUInt32LE(json.length, 8);
  b.writeUInt32LE(crc32(json), 12);
  return Buffer.concat([b, json]);
}

export async function readSnapshotHead(fh: FileHandle, file: string): Promise<{ header: SnapshotHeader; bodyStart: number }> {
  const b = Buffer.alloc(16);
  const { bytesRead } = await fh.read(b, 0, 16, 0);
  if (bytesRead < 16 || b.toString('latin1', 0, 8) !== SNAP_MAGIC) throw new CorruptIndexError(file, `bad snapshot header (expected '${SNAP_MAGIC}')`);
  const len = b.readUInt32LE(8);
  if (len > 1 << 20) throw new CorruptIndexError(file, `snapshot header length ${len} out of range`);
  const json = Buffer.alloc(len);
  await fh.read(json, 0, len, 16);
  if (crc32(json) !== b.readUInt32LE(12)) throw new CorruptIndexError(file, 'snapshot header crc mismatch');
  const h = JSON.parse(json.toString('utf8')) as SnapshotHeader;
  if (!Number.isInteger(h.generation) || !Number.isInteger(h.dim) || !Number.isInteger(h.count) || typeof h.model !== 'string')
    throw new CorruptIndexError(file, `snapshot header fields wrong: ${json.toString('utf8')}`);
  return { header: h, bodyStart: 16 + len };
}
