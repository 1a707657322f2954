// What a run leaves on disk: epoch checkpoints (parameters, optimizer state, history) to resume
// from, and the artifact — a model folder (open_clip layout with tokenizer files), ONNX towers
// when asked, and metadata.json. Everything is written under a temporary name, fsync'd and renamed,
// so a crash or a full disk never leaves a half-written checkpoint or artifact; a checkpoint that
// cannot be read all the same (a damaged disk, a hand edit) is passed over for the one before it.

import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { ClipfitError } from '../errors.js';
import type { ClipModel } from '../models/clip/clip_model.js';
import { writeAdapter } from '../models/clip/lora_adapter.js';
import { ParamStore } from '../runtime/params.js';
import { durableRename } from '../util/durable.js';
import type { Optimizer } from './optim.js';

type History = { epoch: number; metrics: Record<string, number> }[];

const CKPT = 'checkpoints';
const epochDir = (workDir: string, epoch: number) => path.join(workDir, CKPT, `epoch-${String(epoch).padStart(4, '0')}`);

async function writeDirAtomically(dest: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.tmp`);
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    const old = existsSync(dest) ? `${tmp}.old` : null;
    if (old) await fsp.rename(dest, old);
    await durableRename(tmp, dest);
    if (old) await fsp.rm(old, { recursive: true, force: true });
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

export async function saveCheckpoint(workDir: string, epoch: number, params: ParamStore, opt: Optimizer, history: History, keep: number): Promise<void> {
  await fsp.mkdir(path.join(workDir, CKPT), { recursive: true });
  await writeDirAtomically(epochDir(workDir, epoch), async (tmp) => {
    await params.toSafetensors(path.join(tmp, 'params.safetensors'), { epoch: String(epoch) });
    await opt.save(path.join(tmp, 'optimizer.safetensors'));
    await fsp.writeFile(path.join(tmp, 'state.json'), JSON.stringify({ epoch, history }, null, 1));
  });
  const all = (await fsp.readdir(path.join(workDir, CKPT))).filter((d) => /^epoch-\d+$/.test(d)).sort();
  for (const d of all.slice(0, Math.max(0, all.length - keep))) await fsp.rm(path.join(workDir, CKPT, d), { recursive: true, force: true });
}

export interface Resumed {
  epoch: number;
  history: History;
  /** Newer checkpoints that could not be read, newest first, with why. */
  skipped: { dir: string; reason: string }[];
}

/**
 * Restore the newest checkpoint that reads whole into params and opt; null when there is none.
 * Each is read and checked in full before anything is restored, so a damaged one changes nothing
 * and the one before it is tried; when every one is damaged, an error names them all.
 */
export async function loadCheckpoint(workDir: string, params: ParamStore, opt: Optimizer): Promise<Resumed | null> {
  const dir = path.join(workDir, CKPT);
  if (!existsSync(dir)) return null;
  const all = (await fsp.readdir(dir)).filter((d) => /^epoch-\d+$/.test(d)).sort().reverse();
  const skipped: Resumed['skipped'] = [];
  for (const name of all) {
    const d = path.join(dir, name);
    try {
      const p = await ParamStore.fromSafetensors(path.join(d, 'params.safetensors'));
      if (!p.sameLayout(params)) throw new ClipfitError('its parameters do not match the model');
      const state = JSON.parse(await fsp.readFile(path.join(d, 'state.json'), 'utf8')) as { epoch: number; history: History };
      if (!Number.isInteger(state.epoch) || !Array.isArray(state.history)) throw new ClipfitError('state.json lacks epoch or history');
      await opt.load(path.join(d, 'optimizer.safetensors')); // validates the whole file before it changes the optimizer
      params.copyFrom(p);
      return { epoch: state.epoch, history: state.history, skipped };
    } catch (err) {
      skipped.push({ dir: d, reason: (err as Error).message });
    }
  }
  if (skipped.length) throw new ClipfitError(`no checkpoint in ${dir} can be read: ${skipped.map((s) => `${path.basename(s.dir)} (${s.reason})`).join('; ')}`);
  return null;
}

export async function writeArtifact(
  workDir: string,
  model: ClipModel,
  meta: { options: unknown; history: History; epochs: number; steps: number; toOnnx: boolean; merge?: boolean },
): Promise<string> {
  const dest = path.join(workDir, 'artifact');
  await writeDirAtomically(dest, async (tmp) => {
    // A model with adapters: the adapter, and the merged model (a plain model folder) when asked.
    const lora = model.lora;
    if (lora) await writeAdapter(tmp, model.params, lora);
    if (!lora || meta.merge) await model.save(tmp, 'open_clip');
    if (meta.toOnnx) await model.exportOnnx(tmp);
    const metadata = { producer: 'clipfit', created: new Date().toISOString(), ...meta, models: meta.toOnnx ? ['clip-text', 'clip-vision'] : [] };
    await fsp.writeFile(path.join(tmp, 'metadata.json'), JSON.stringify(metadata, null, 2));
  });
  return dest;
}
