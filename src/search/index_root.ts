// One on-disk layout for a named (or folder) index, whoever opens it — `clipfit serve` or
// `clipfit index …`:
//   ROOT/LOCK.<n>   the owner: who has the index open (what, pid + start time, a server's URL)
//   ROOT/primary/   the vector index (folder_index.ts) of the model the index is searched with
//   ROOT/compare/   a server's compare-model index of the same items (serve --compare)
//   ROOT/images/    the images a server stored, <id>.<ext>
// Every writer takes the owner lock first, so a server, an `index add`, a `rebuild` and a second
// server never write one index at once; a rebuild swaps ROOT/primary for a new generation built
// beside it while holding that lock. A root written by older `clipfit index` commands (the vector
// files directly in ROOT) is moved into ROOT/primary under the lock.

import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { CorruptIndexError } from '../errors.js';
import { FolderIndex } from './folder_index.js';
import type { FolderIndexOptions } from './folder_index.js';
import { syncDir } from './index_files.js';
import { acquireIndexLock } from './index_lock.js';
import type { IndexLock, LockHolder } from './index_lock.js';

export const rootLayout = (root: string) => ({
  primary: path.join(root, 'primary'),
  compare: path.join(root, 'compare'),
  images: path.join(root, 'images'),
});

const LEGACY_FILES = ['snapshot.bin', 'log.bin', 'hnsw.usearch', 'hnsw.json', 'meta.json'];

/** What to do about an index held by `h`: a server takes writes through its API. */
export function lockedHint(h: LockHolder): string {
  if (h.url) return `send writes to its API instead (POST ${h.url}/index, DELETE ${h.url}/index/ID), or stop it first`;
  return 'wait for it to finish or stop it first';
}

/**
 * Take ROOT's owner lock for `purpose` (or throw IndexLockedError naming the holder and what to do),
 * then move a legacy layout into ROOT/primary.
 */
export async function claimIndexRoot(root: string, purpose: string, label = root): Promise<IndexLock> {
  const lock = await acquireIndexLock(root, purpose, label, lockedHint);
  try {
    await migrateLegacy(root);
    return lock;
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function migrateLegacy(root: string): Promise<void> {
  const present = LEGACY_FILES.filter((f) => existsSync(path.join(root, f)));
  if (!present.length) return;
  const { primary } = rootLayout(root);
  if (existsSync(path.join(primary, 'meta.json')) || existsSync(path.join(primary, 'log.bin')))
    throw new CorruptIndexError(path.join(root, present[0]!), `vector index files in ${root} and in ${primary}: move one set away`);
  await fsp.mkdir(primary, { recursive: true });
  // meta.json last: until it moves, a crash leaves a root that is migrated again on the next open.
  for (const f of LEGACY_FILES) if (present.includes(f)) await fsp.rename(path.join(root, f), path.join(primary, f));
  await syncDir(primary);
  await syncDir(root);
}

/**
 * Open (or, given dim and model, create) ROOT's primary vector index, holding ROOT's owner lock
 * until the index is closed (also across replaceAll).
 */
export async function openRootIndex(root: string, purpose: string, opts: FolderIndexOptions = {}, label = root): Promise<FolderIndex> {
  const lock = await claimIndexRoot(root, purpose, label);
  try {
    return await FolderIndex.open(rootLayout(root).primary, { ...opts, onClose: () => lock.release() });
  } catch (err) {
    await lock.release();
    throw err;
  }
}
