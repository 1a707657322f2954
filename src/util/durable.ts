// Durability for files renamed into place: rename is atomic, but after a crash the new name can
// point at blocks that never reached the disk unless the files were fsync'd first, and the rename
// itself is lost unless the folder holding it is fsync'd after.

import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** fsync one file or folder (a platform that cannot fsync a folder still renames atomically). */
export async function syncPath(p: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(p, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM') throw err;
  } finally {
    await fh?.close();
  }
}

/** fsync every file and folder under `root`, children before their folder. */
export async function syncTree(root: string): Promise<void> {
  const st = await fsp.lstat(root);
  if (st.isDirectory()) for (const e of await fsp.readdir(root)) await syncTree(path.join(root, e));
  if (st.isDirectory() || st.isFile()) await syncPath(root);
}

/** Rename `from` to `to` once everything under `from` is on disk, then make the rename durable. */
export async function durableRename(from: string, to: string): Promise<void> {
  await syncTree(from);
  await fsp.rename(from, to);
  await syncPath(path.dirname(to));
}
