// A folder index's snapshot: the whole state at one log generation, written to a temp file,
// fsync'd and renamed over snapshot.bin (index_files.ts has the header layout). Items keep their
// slots, so a reload reproduces the store exactly and a graph saved for this generation still fits.

import { promises as fsp } from 'node:fs';
import { CorruptIndexError } from '../errors.js';
import { atomicWrite, readFramed, readSnapshotHead, snapshotHead, writeAll } from './index_files.js';
import type { SnapshotHeader } from './index_files.js';
import type { Metadata } from './index_types.js';
import { T_SLOTS, decodePayload, encodeItems } from './records.js';
import type { DecodedRecord } from './records.js';
import type { VectorStore } from './vector_store.js';

/** Load every row into `store` (then sealed); any damage is a CorruptIndexError naming the file. */
export async function readSnapshot(file: string, store: VectorStore): Promise<SnapshotHeader> {
  const fh = await fsp.open(file, 'r');
  try {
    const { header, bodyStart } = await readSnapshotHead(fh, file);
    if (header.dim !== store.dim) throw new CorruptIndexError(file, `snapshot dimension ${header.dim} differs from meta.json's ${store.dim}`);
    const end = (await fh.stat()).size;
    // Room for every slot at once. Every row takes at least dim·4 bytes of the file, which bounds a
    // damaged header's count; slots beyond twice the count (holes) are not trusted either.
    const rows = Math.min(header.count, Math.floor((end - bodyStart) / (store.dim * 4)));
    const slots = header.slots;
    store.reserve(Number.isInteger(slots) && slots! >= rows && slots! <= 2 * rows + 1024 ? slots! : rows);
    let pos = bodyStart, n = 0;
    while (pos < end) {
      const r = await readFramed(fh, pos, end);
      if (!r.ok) throw new CorruptIndexError(file, `record at byte ${pos}: ${r.why}`);
      let rec: DecodedRecord;
      try {
        rec = decodePayload(r.payload, store.dim);
      } catch (err) {
        throw new CorruptIndexError(file, `record at byte ${pos}: ${(err as Error).message}`, { cause: err });
      }
      if (rec.type !== T_SLOTS) throw new CorruptIndexError(file, `record at byte ${pos}: type ${rec.type} in a snapshot`);
      for (const it of rec.items) store.place(it.slot, it.id, it.metadata, it.vectorBytes);
      n += rec.items.length;
      pos = r.next;
    }
    if (n !== header.count || store.size !== n) throw new CorruptIndexError(file, `holds ${n} items (${store.size} distinct), its header says ${header.count}`);
    store.seal();
    return header;
  } finally {
    await fh.close();
  }
}

/** Seal `store` and write it whole, live rows in slot order, 4096 items per record at most; the header records `slots`, the store's end. */
export async function writeSnapshot(file: string, store: VectorStore, header: SnapshotHeader): Promise<void> {
  store.seal();
  await atomicWrite(file, async (fh) => {
    let at = 0;
    const put = async (b: Buffer) => {
      await writeAll(fh, b, at);
      at += b.length;
    };
    await put(snapshotHead({ ...header, slots: store.end }));
    let batch: { slot: number; id: string; metadata: Metadata | undefined; vector: Float32Array }[] = [];
    const drain = async () => {
      for (const rec of encodeItems(batch, true)) await put(rec);
      batch = [];
    };
    for (const slot of store.liveSlots()) {
      batch.push({ slot, id: store.ids[slot]!, metadata: store.metas[slot], vector: store.row(slot) });
      if (batch.length >= 4096) await drain();
    }
    await drain();
  });
}
