// Which parameters train, and which get weight decay.
//   Freezing: lock a tower fully, or all but its last N residual blocks (plus what follows them:
//   the final LayerNorm and projection), as open_clip's lock_image / lock_text with unlocked groups.
//   Weight decay: open_clip's rule by default: no decay for gains, biases and logit_scale
//   (fewer than 2 dims, or a name with ln/bias/logit_scale); 'none' decays everything.

import { ConfigError } from '../errors.js';
import type { ClipModelCfg } from '../models/clip/config.js';
import type { ParamEntry } from '../runtime/params.js';
import type { FreezeSpec, OptimizerOptionsJson } from './fit_types.js';

const isVision = (name: string) => name.startsWith('visual.');

function blockIndex(name: string): number | null {
  const m = /resblocks\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/** Parameters of one tower that stay trainable under `spec`. */
function unlocked(name: string, spec: FreezeSpec | undefined, layers: number, headNames: RegExp): boolean {
  if (spec === undefined || spec === false) return true;
  if (spec === true) return false;
  const n = spec.allButLast;
  if (!Number.isInteger(n) || n < 0) throw new ConfigError('freeze.allButLast', `must be a non-negative integer, got ${n}`);
  const b = blockIndex(name);
  if (b !== null) return b >= layers - n;
  return n > 0 && headNames.test(name);
}

export function trainableFilter(cfg: ClipModelCfg, freeze: { image?: FreezeSpec; text?: FreezeSpec } = {}): (name: string) => boolean {
  return (name) => {
    if (name === 'logit_scale') return true;
    if (isVision(name)) return unlocked(name, freeze.image, cfg.vision_cfg.layers, /^visual\.(ln_post|proj)/);
    return unlocked(name, freeze.text, cfg.text_cfg.layers, /^(ln_final|text_projection)/);
  };
}

export function excludedFromDecay(e: ParamEntry, rule: OptimizerOptionsJson['weightDecayExclude'] = 'default'): boolean {
  if (rule === 'none') return false;
  if (rule === 'default') return e.shape.length < 2 || /(^|\.)ln|bias|logit_scale/.test(e.name);
  if (Array.isArray(rule)) return rule.some((s) => e.name.includes(s));
  throw new ConfigError('optimizerOptions.weightDecayExclude', `must be 'default', 'none' or a list of name substrings, got ${JSON.stringify(rule)}`);
}

/** Two optimizer groups over the trainable parameters: decayed and not decayed. */
export function paramGroups(entries: readonly ParamEntry[], trainable: (name: string) => boolean, lr: number, weightDecay: number, rule: OptimizerOptionsJson['weightDecayExclude']) {
  const t = entries.filter((e) => trainable(e.name));
  const decay = t.filter((e) => !excludedFromDecay(e, rule)).map((e) => e.name);
  const noDecay = t.filter((e) => excludedFromDecay(e, rule)).map((e) => e.name);
  return [
    { params: decay, lr, weightDecay },
    { params: noDecay, lr, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}
