// The LoRA flags of `clipfit fit` and `clipfit demo`, folded into fit's `lora` option.

import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { LORA_DEFAULTS, LORA_TARGETS, LORA_TOWERS } from '../../models/clip/lora.js';
import type { LoraOptions, LoraTarget, LoraTower } from '../../models/clip/lora.js';

export interface LoraFlags {
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: string;
  loraTowers?: string;
  merge?: boolean;
}

/**
 * A number flag. Text that is no number is refused here, naming the flag and the lora field: NaN
 * would travel to a detached run's worker as JSON null, i.e. as the default.
 */
const numberOf = (flag: string, field: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new ConfigError(flag, `${field} must be a number, got ${JSON.stringify(v)}`);
  return n;
};

/** Add the LoRA flags to a command. */
export function addLoraOptions(cmd: Command): Command {
  return cmd
    .option('--lora-rank <r>', `train LoRA adapters of rank r instead of the weights (PEFT's default ${LORA_DEFAULTS.rank})`, numberOf('--lora-rank', 'lora.rank'))
    .option('--lora-alpha <alpha>', 'LoRA scale numerator: the update is (alpha/rank)·B·A (default: alpha = rank)', numberOf('--lora-alpha', 'lora.alpha'))
    .option('--lora-dropout <p>', 'dropout probability on the adapters\' input while training, in [0, 1) (PEFT\'s lora_dropout; default 0)', numberOf('--lora-dropout', 'lora.dropout'))
    .option('--lora-targets <list>', `layers that get adapters: ${LORA_TARGETS.join(',')} (default both)`)
    .option('--lora-towers <list>', `towers that get adapters: ${LORA_TOWERS.join(',')} (default both)`)
    .option('--merge', 'with LoRA: also write the merged model (open_clip layout) into the artifact (--to-onnx implies it)');
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** `base` (a config file's lora, if any) overridden by the flags given; undefined when neither asks for LoRA. */
export function loraFromFlags(f: LoraFlags, base?: LoraOptions): LoraOptions | undefined {
  const given = f.loraRank !== undefined || f.loraAlpha !== undefined || f.loraDropout !== undefined || f.loraTargets !== undefined || f.loraTowers !== undefined;
  if (!given && !base) {
    if (f.merge) throw new ConfigError('--merge', 'merges LoRA adapters: give --lora-rank (or lora in --config) too');
    return undefined;
  }
  const o: LoraOptions = { ...(base ?? {}) };
  if (f.loraRank !== undefined) o.rank = f.loraRank;
  if (f.loraAlpha !== undefined) o.alpha = f.loraAlpha;
  if (f.loraDropout !== undefined) o.dropout = f.loraDropout;
  if (f.loraTargets !== undefined) o.targets = list(f.loraTargets) as LoraTarget[];
  if (f.loraTowers !== undefined) o.towers = list(f.loraTowers) as LoraTower[];
  if (f.merge) o.merge = true;
  return o;
}
