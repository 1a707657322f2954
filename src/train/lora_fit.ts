// fit()'s LoRA option: the model gets adapters beside the chosen linear weights, and only the
// adapters train — every base parameter (weights, biases, LayerNorms, embeddings, logit_scale) is
// frozen, so it gets no gradient and no optimizer state, and ends bit-for-bit as it began.
// With lora.dropout, each step's graph gets the step's dropout key (lora_dropout.ts).

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { ClipModel } from '../models/clip/clip_model.js';
import { LORA_DROPOUT_SEED, LORA_ROW_OFFSET, dropoutStepSeed } from '../models/clip/lora_dropout.js';
import type { Tensor } from '../runtime/session.js';
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

/**
 * The training step's dropout feeds for global step `step` of a run seeded `seed` (none without
 * dropout): its key, a function of (seed, step) only so a resumed run draws the same masks, and row
 * offset 0 (GradCache replaces it with each chunk's first row).
 */
export function loraStepFeeds(model: ClipModel, seed: number, step: number): Record<string, Tensor> {
  if (!model.lora || model.lora.spec.dropout === 0) return {};
  const scalar = (v: bigint): Tensor => ({ dtype: 'int64', shape: [], data: BigInt64Array.of(v) });
  return { [LORA_DROPOUT_SEED]: scalar(dropoutStepSeed(seed, step)), [LORA_ROW_OFFSET]: scalar(0n) };
}
