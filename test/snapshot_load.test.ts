// A snapshot loads into a store sized for its rows at once: the store used to grow by 1.5× row by
// row, and in a process that does not trim its heap (bin/clipfit sets glibc's tunables so) the
// freed copies stayed resident — 7.1 GB for a 1M × 512 index that holds 2 GB of vectors.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readSnapshot, writeSnapshot } from '../src/search/snapshot.js';
import { VectorStore } from '../src/search/vector_store.js';
import { seededRandom } from '../src/util/random.js';

const DIM = 8;

function unit(r: () => number): Float32Array {
  const v = Float32Array.from({ length: DIM }, () => r() - 0.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

test('a snapshot of 5,000 rows with holes loads into exactly its rows, every vector and id in place', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-snapload-'));
  try {
    const r = seededRandom(5);
    const src = new VectorStore(DIM);
    const kept = new Map<string, Float32Array>();
    for (let i = 0; i < 5000; i++) {
      const v = unit(r);
      src.upsert(`v${i}`, { i }, v);
      kept.set(`v${i}`, v);
    }
    for (let i = 0; i < 5000; i += 7) {
      src.delete(`v${i}`);
      kept.delete(`v${i}`);
    }
    const file = path.join(dir, 'snapshot.bin');
    await writeSnapshot(file, src, { generation: 1, dim: DIM, model: 'm@1', count: src.size });

    const dst = new VectorStore(DIM);
    const h = await readSnapshot(file, dst);
    assert.equal(h.count, kept.size);
    assert.equal(dst.size, kept.size);
    // Room for the rows the snapshot holds (holes included), not 1.5× of them.
    const capacity = (dst as unknown as { vectors: Float32Array }).vectors.length / DIM;
    assert.equal(h.slots, 5000);
    assert.equal(capacity, dst.end, `capacity ${capacity} rows for ${h.count} items over ${dst.end} slots`);
    for (const [id, v] of kept) {
      const slot = dst.slotOf.get(id);
      assert.ok(slot !== undefined, id);
      assert.deepEqual(dst.row(slot), v, id);
      assert.deepEqual(dst.metas[slot], { i: Number(id.slice(1)) });
    }
    // The loaded store still grows for new rows.
    dst.upsert('new', undefined, unit(r));
    assert.equal(dst.size, kept.size + 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
