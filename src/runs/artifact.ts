// Copy a finished run's artifact to a folder of the user's choosing. The copy goes to a temporary
// name beside the destination, fsync'd and renamed at the end, so a full disk or a crash never leaves
// a half-written artifact; an existing destination is refused, never overwritten.

import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { RunError } from '../errors.js';
import { durableRename } from '../util/durable.js';

/** Copy run `name`'s artifact folder `src` (undefined: it has none) to `dest`; `status` is the run's. */
export async function copyArtifact(name: string, status: string, src: string | undefined, dest: string): Promise<string> {
  if (status !== 'FINISHED' || !src) throw new RunError(name, `has no artifact (status ${status}); only a FINISHED run has one`);
  if (!existsSync(src)) throw new RunError(name, `artifact folder ${src} is missing`);
  const out = path.resolve(dest);
  if (existsSync(out)) throw new RunError(name, `destination ${out} already exists; choose a new folder (nothing was written)`);
  await fsp.mkdir(path.dirname(out), { recursive: true });
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
  try {
    await fsp.cp(src, tmp, { recursive: true, errorOnExist: true });
    await durableRename(tmp, out);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw new RunError(name, `could not write the artifact to ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return out;
}
