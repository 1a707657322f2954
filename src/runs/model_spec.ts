// One grammar for naming a model wherever one is asked for (fit, encode, eval, index, serve):
//   a model folder (open_clip or Hugging Face layout, a fit() artifact, a folder `clipfit artifact` wrote),
//   a run folder (the artifact inside it),
//   the name of a finished run in the run store (its artifact),
//   name::tag from the registry (downloaded once into the cache; with `offline`, the cache only).
// A folder wins over a run of the same name. It lives with the runs because run names need the run
// store; the model loaders below (ClipModel.load, fit) take folders and name::tag only.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { UnknownModelError } from '../errors.js';
import { parseModelId } from '../models/clip/weights/registry.js';
import { resolveModel } from '../models/clip/weights/hub.js';
import type { ResolveOptions } from '../models/clip/weights/hub.js';
import { RunStore } from './store.js';

const RUN_NAME = /^[A-Za-z0-9][\w.-]*$/;
const isModelFolder = (dir: string) => existsSync(path.join(dir, 'open_clip_config.json')) || existsSync(path.join(dir, 'config.json'));

/**
 * The artifact folder a run folder or a run name stands for; null when `spec` names neither (a
 * model folder, name::tag, anything else). A run without an artifact is an UnknownModelError.
 */
export function runArtifactFor(spec: string, home?: string): string | null {
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    const artifact = path.join(spec, 'artifact');
    return !isModelFolder(spec) && existsSync(artifact) ? path.resolve(artifact) : null;
  }
  if (parseModelId(spec) || !RUN_NAME.test(spec)) return null;
  const store = RunStore.open(home);
  const rec = store.find(spec);
  if (!rec) return null;
  if (!rec.artifactDir || !existsSync(rec.artifactDir)) throw new UnknownModelError(spec, `run ${spec} is ${rec.status} and has no artifact to use as a model`);
  return rec.artifactDir;
}

/** The model folder `spec` names, in the grammar above. */
export async function resolveModelSpec(spec: string, opts: ResolveOptions = {}): Promise<string> {
  return runArtifactFor(spec, opts.home) ?? resolveModel(spec, opts);
}
