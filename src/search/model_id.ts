// The id an index records for the embedding model its vectors came from: the architecture name and a
// content fingerprint, `<name>@<12 hex>`. The fingerprint hashes the model config files whole and,
// for each weights file (safetensors, else ONNX), its size and first and last MiB, so a re-fit
// into the same folder changes the id while a moved or copied folder keeps it.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { readFolderConfig } from '../models/clip/weights/checkpoint.js';

const EDGE = 1 << 20;

async function listFiles(dir: string, depth = 1): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile()) out.push(p);
    else if (e.isDirectory() && depth > 0) out.push(...(await listFiles(p, depth - 1)));
  }
  return out.sort();
}

async function hashEdges(h: ReturnType<typeof createHash>, file: string): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    h.update(`${size}\0`);
    const read = async (pos: number, n: number) => {
      const b = Buffer.alloc(n);
      await fh.read(b, 0, n, pos);
      h.update(b);
    };
    if (size <= 2 * EDGE) await read(0, size);
    else {
      await read(0, EDGE);
      await read(size - EDGE, EDGE);
    }
  } finally {
    await fh.close();
  }
}

/** The architecture's name from the folder's config; the folder's name when it has none. */
async function modelName(root: string): Promise<string> {
  try {
    return (await readFolderConfig(root)).config.name || path.basename(root);
  } catch {
    return path.basename(root);
  }
}

/** `<architecture>@<fingerprint>` of a model folder; the server and `clipfit index` both record it. */
export async function modelIdOf(dir: string): Promise<string> {
  const root = path.resolve(dir);
  const all = await listFiles(root);
  const rel = (f: string) => path.relative(root, f).split(path.sep).join('/');
  const configs = all.filter((f) => /^(open_clip_config|config|preprocessor_config)\.json$/.test(path.basename(f)));
  let weights = all.filter((f) => f.endsWith('.safetensors'));
  if (!weights.length) weights = all.filter((f) => f.endsWith('.onnx'));
  const h = createHash('sha256');
  for (const f of [...configs, ...weights]) {
    h.update(`${rel(f)}\0`);
    await hashEdges(h, f);
  }
  return `${await modelName(root)}@${h.digest('hex').slice(0, 12)}`;
}
