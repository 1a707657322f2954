// fit()'s LoRA option: the model gets adapters beside the chosen linear weights, and only the
// adapters train — every base parameter (weights, biases, LayerNorms, embeddings, logit_scale) is
// frozen, so it gets no gradient and no optimizer state, and ends bit-for-bit as it began.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { ClipModel } from '../models/clip/clip_model.js';
import { isLoraParam, resolveLora } from '../models/clip/lora.js';
import type { LoraOptions } from '../models/clip/lora.js';

/** The base as an adapter names it: a folder as an absolute path (so it loads from anywhere), else the id. */
export function baseModelId(spec: string): string {
  return existsSync(spec) && statSync(spec).isDirectory() ? path.resolve(spec) : spec;
}

/** `model` with adapters (A from `seed`, B = 0), or `model` itself without the option. */
export function withLoraOption(model: ClipModel, o: { model: string; lora?: LoraOptions; seed: number; tokenizer?: string; freeze: object }): ClipModel {
  if (!o.lora) return model;
  if (Object.values(o.freeze).some((v) => v !== undefined && v !== false))
    throw new ConfigError('freeze', 'LoRA freezes every base weight already; choose the adapted towers with lora.towers instead');
  const spec = resolveLora(o.lora, model.config.model_cfg);
  const tokenizer = o.tokenizer && existsSync(o.tokenizer) ? path.resolve(o.tokenizer) : o.tokenizer;
  return model.withLora(spec, { base: baseModelId(o.model), seed: o.seed, ...(tokenizer ? { tokenizer } : {}) });
}

/** With adapters only they train. */
export function loraTrainable(model: ClipModel): ((name: string) => boolean) | null {
  return model.lora ? isLoraParam : null;
}
