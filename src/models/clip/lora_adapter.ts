// A LoRA adapter on disk, PEFT-like: `adapter_config.json` (peft_type LORA, r, lora_alpha,
// lora_dropout, target_modules, the base model's id or folder, and a fingerprint of the base's
// weights so an adapter put onto another base is refused) and `adapter_model.safetensors` (the A
// and B of every adapted layer, float32, named `<module>.lora_A.weight` / `.lora_B.weight`).

import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../errors.js';
import type { ParamStore } from '../../runtime/params.js';
import { readSafetensors, writeSafetensors } from '../../runtime/safetensors.js';
import type { StFile } from '../../runtime/safetensors.js';
import type { LoraLayer, LoraOptions, LoraSpec } from './lora.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** What a model with adapters knows about them beyond their values. */
export interface LoraState {
  spec: LoraSpec;
  layers: LoraLayer[];
  /** The base model as it was named: `name::tag` or an absolute folder. */
  base: string;
  /** weightsFingerprint of the base's parameters. */
  baseFingerprint: string;
  /** The tokenizer option the base was loaded with, when its folder carries none. */
  tokenizer?: string;
}

export interface AdapterConfigJson {
  peft_type: 'LORA';
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** The adapted modules' names inside a block (PEFT's target_modules). */
  target_modules: string[];
  /** clipfit's names for them ('attn', 'mlp') and the towers adapted ('text', 'image'). */
  targets: string[];
  towers: string[];
  bias: 'none';
  base_model_name_or_path: string;
  base_model_fingerprint: string;
  tokenizer?: string;
  library: 'clipfit';
}

/** A folder holding an adapter (it may hold the merged model beside it). */
export const isAdapterFolder = (dir: string): boolean => existsSync(path.join(dir, ADAPTER_CONFIG));

const TARGET_MODULES: Record<string, string[]> = { attn: ['attn.in_proj', 'attn.out_proj'], mlp: ['mlp.c_fc', 'mlp.c_proj'] };

/** Write the adapter's two files into `dir` (which exists). */
export async function writeAdapter(dir: string, params: ParamStore, s: LoraState): Promise<void> {
  const config: AdapterConfigJson = {
    peft_type: 'LORA',
    r: s.spec.rank,
    lora_alpha: s.spec.alpha,
    lora_dropout: s.spec.dropout,
    target_modules: s.spec.targets.flatMap((t) => TARGET_MODULES[t]!),
    targets: s.spec.targets,
    towers: s.spec.towers,
    bias: 'none',
    base_model_name_or_path: s.base,
    base_model_fingerprint: s.baseFingerprint,
    ...(s.tokenizer ? { tokenizer: s.tokenizer } : {}),
    library: 'clipfit',
  };
  const tensors = s.layers.flatMap((l) => [l.a, l.b].map((n): [string, { shape: number[]; data: Float32Array }] => [n, { shape: [...params.entry(n).shape], data: params.view(n) }]));
  await writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), tensors, { format: 'pt', base_model_fingerprint: s.baseFingerprint });
  await fsp.writeFile(path.join(dir, ADAPTER_CONFIG), JSON.stringify(config, null, 2) + '\n');
}

export interface AdapterFolder {
  dir: string;
  config: AdapterConfigJson;
  /** The LoRA options the config gives (checked against the base model by resolveLora). */
  options: LoraOptions;
  tensors: StFile['tensors'];
}

/** Read and check an adapter folder's config and weights (not yet against any base). */
export async function readAdapter(dir: string): Promise<AdapterFolder> {
  const file = path.join(dir, ADAPTER_CONFIG);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(ADAPTER_CONFIG, `cannot read it as JSON: ${(err as Error).message}`, file);
  }
  if (!raw || typeof raw !== 'object') throw new ConfigError(ADAPTER_CONFIG, 'must hold a JSON object', file);
  if (raw['peft_type'] !== 'LORA') throw new ConfigError('peft_type', `must be "LORA", got ${JSON.stringify(raw['peft_type'])}`, file);
  for (const k of ['base_model_name_or_path', 'base_model_fingerprint'])
    if (typeof raw[k] !== 'string' || !raw[k]) throw new ConfigError(k, `must be a non-empty string, got ${JSON.stringify(raw[k])}`, file);
  if (raw['tokenizer'] !== undefined && typeof raw['tokenizer'] !== 'string') throw new ConfigError('tokenizer', `must be a path, got ${JSON.stringify(raw['tokenizer'])}`, file);
  const options: LoraOptions = {
    rank: raw['r'] as number,
    alpha: raw['lora_alpha'] as number,
    dropout: (raw['lora_dropout'] ?? 0) as number,
    targets: raw['targets'] as LoraOptions['targets'],
    towers: raw['towers'] as LoraOptions['towers'],
  };
  const weights = path.join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(weights)) throw new ConfigError(ADAPTER_WEIGHTS, `missing beside ${ADAPTER_CONFIG}`, weights);
  const st = await readSafetensors(weights);
  return { dir: path.resolve(dir), config: raw as unknown as AdapterConfigJson, options, tensors: st.tensors };
}
