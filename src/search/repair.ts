// Salvage a damaged folder index: every record of the snapshot and the log whose frame and crc check
// out (and that decodes) is replayed in order; each stretch of damage is skipped to the next good
// record and reported. The result is written as a new generation (snapshot + empty log, the usual
// temp + fsync + rename); the damaged files are kept beside it as *.damaged-<time> for inspection.

import { existsSync, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CorruptIndexError } from '../errors.js';
import { LOG_HEADER_BYTES, atomicWrite, files, logHeader, nextGoodRecord, readFramed, readLogGeneration, readMeta, readSnapshotHead, syncDir, writeMeta } from './index_files.js';
import { acquireIndexLock } from './index_lock.js';
import { T_CLEAR, T_DELETE, T_SLOTS, T_UPSERT, decodePayload } from './records.js';
import type { DecodedRecord } from './records.js';
import { writeSnapshot } from './snapshot.js';
import { VectorStore } from './vector_store.js';

export interface DroppedRange {
  file: string;
  /** Byte range [from, to) that held no intact record. */
  from: number;
  to: number;
  why: string;
}

export interface RepairReport {
  dir: string;
  /** Intact records replayed from the snapshot and the log. */
  records: number;
  items: number;
  dropped: DroppedRange[];
  /** Where the damaged files were moved (empty when nothing was damaged and nothing was rewritten). */
  kept: string[];
  generation: number;
}

/** Replay the intact records of [start, end) of `file` through `each`; returns the damaged ranges. */
async function salvage(fh: FileHandle, file: string, start: number, end: number, dim: number, each: (rec: DecodedRecord) => void): Promise<{ records: number; dropped: DroppedRange[] }> {
  const dropped: DroppedRange[] = [];
  let records = 0;
  let pos = start;
  while (pos < end) {
    const r = await readFramed(fh, pos, end);
    let why: string | undefined;
    if (r.ok) {
      try {
        each(decodePayload(r.payload, dim));
        records++;
        pos = r.next;
        continue;
      } catch (err) {
        why = (err as Error).message;
      }
    } else why = r.why;
    const next = await nextGoodRecord(fh, pos + 1, end);
    dropped.push({ file, from: pos, to: next ?? end, why });
    if (next === null) break;
    pos = next;
  }
  return { records, dropped };
}

function applyTo(store: VectorStore, rec: DecodedRecord, model: { value: string }): void {
  if (rec.type === T_UPSERT || rec.type === T_SLOTS) for (const it of rec.items) store.upsert(it.id, it.metadata, it.vectorBytes);
  else if (rec.type === T_DELETE) store.delete(rec.id);
  else if (rec.type === T_CLEAR) {
    store.clear();
    model.value = rec.model;
  }
}

/** Repair the folder index at `dir` (it must not be open anywhere: its lock is taken). */
export async function repairFolderIndex(dir: string): Promise<RepairReport> {
  const f = files(dir);
  if (!existsSync(f.meta)) throw new CorruptIndexError(f.meta, 'missing: without meta.json the dimension of the vectors is unknown; nothing to repair from');
  const lock = await acquireIndexLock(dir, 'clipfit index repair');
  try {
    const meta = readMeta(f.meta);
    const store = new VectorStore(meta.dim);
    const model = { value: meta.model };
    const dropped: DroppedRange[] = [];
    const damaged = new Set<string>();
    let records = 0;
    let generation = 0;
    if (existsSync(f.snapshot)) {
      const fh = await fsp.open(f.snapshot, 'r');
      try {
        const end = (await fh.stat()).size;
        let bodyStart = 16;
        try {
          const h = await readSnapshotHead(fh, f.snapshot);
          generation = h.header.generation;
          model.value = h.header.model;
          bodyStart = h.bodyStart;
        } catch (err) {
          dropped.push({ file: f.snapshot, from: 0, to: 16, why: (err as Error).message });
          const next = await nextGoodRecord(fh, 16, end);
          bodyStart = next ?? end;
          damaged.add(f.snapshot);
        }
        const s = await salvage(fh, f.snapshot, bodyStart, end, meta.dim, (rec) => applyTo(store, rec, model));
        records += s.records;
        if (s.dropped.length) damaged.add(f.snapshot);
        dropped.push(...s.dropped);
      } finally {
        await fh.close();
      }
    }
    if (existsSync(f.log)) {
      const fh = await fsp.open(f.log, 'r');
      try {
        const end = (await fh.stat()).size;
        let lg = generation;
        try {
          lg = await readLogGeneration(fh, f.log);
        } catch (err) {
          dropped.push({ file: f.log, from: 0, to: LOG_HEADER_BYTES, why: (err as Error).message });
          damaged.add(f.log);
        }
        // A log older than the snapshot was folded into it already.
        if (lg >= generation) {
          const s = await salvage(fh, f.log, LOG_HEADER_BYTES, end, meta.dim, (rec) => applyTo(store, rec, model));
          records += s.records;
          if (s.dropped.length) damaged.add(f.log);
          dropped.push(...s.dropped);
          generation = Math.max(generation, lg);
        }
      } finally {
        await fh.close();
      }
    }
    const kept: string[] = [];
    const next = generation + 1;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (const file of damaged) {
      const to = `${file}.damaged-${stamp}`;
      await fsp.copyFile(file, to);
      kept.push(to);
    }
    // The new generation: snapshot first (a log of an older generation is then ignored at open),
    // then a fresh log; a derived HNSW graph of the old generation no longer fits.
    await writeSnapshot(f.snapshot, store, { generation: next, dim: meta.dim, model: model.value, count: store.size });
    await atomicWrite(f.log, [logHeader(next)]);
    await fsp.rm(f.graphMeta, { force: true });
    if (model.value !== meta.model) await writeMeta(f.meta, { ...meta, model: model.value });
    await syncDir(path.dirname(f.meta));
    return { dir, records, items: store.size, dropped, kept, generation: next };
  } finally {
    await lock.release();
  }
}
