// The models clipfit knows: one open_clip config JSON per architecture (./configs/*.json) and the
// pretrained tags with the Hugging Face repositories that host their weights. `name::tag` names a
// downloadable checkpoint (hub.ts); `describeModels()` lists them with their sizes.
//
// Repositories, as open_clip's pretrained.py maps them. OpenAI's weights are served by timm's
// repos, which carry `open_clip_model.safetensors` (OpenAI key names) and `open_clip_config.json`
// (timm/vit_base_patch32_clip_224.openai also vocab.json, merges.txt, tokenizer.json; the others no
// tokenizer: OpenAI's BPE is bundled); their `model.safetensors`/`pytorch_model.bin` are timm's own
// layout and never used. OpenAI weights always run QuickGELU, whatever the config name says (open_clip
// forces quick_gelu=True for the `openai` tag). LAION's L-14 repo holds its safetensors weights as
// `open_clip_pytorch_model.safetensors` (no `open_clip_model.safetensors`); L-14 laion2b_s32b_b82k was
// trained with Inception statistics (mean = std = 0.5). test/hub_repos.json lists the repositories'
// files as published, and test/hub_repos.test.ts fetches every tag from a mirror of them.
//
// A repository's own config never changes the architecture: the model config here (and the tag's
// quick_gelu) is authoritative, a repository config that disagrees is refused, and the repository's
// preprocess_cfg is used except for the mean/std a tag sets.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, UnknownModelError } from '../../../errors.js';
import type { ClipConfig, ClipModelCfg, PreprocessCfg } from '../config.js';
import { countParams, defaultPreprocess, parseModelConfig } from '../config.js';

export type Layout = 'open_clip' | 'hf';

export interface PretrainedFile {
  /** Path inside the repository. */
  name: string;
  /** Expected sha256 (hex), when known; otherwise the server's LFS etag is used if it is one. */
  sha256?: string;
}

export interface PretrainedSpec {
  /** Hugging Face repository id, e.g. `timm/vit_base_patch32_clip_224.openai`. */
  repo: string;
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Which model-folder layout the files make up. */
  layout: Layout;
  /**
   * Files the folder cannot do without, as the repository names them (the weights; for 'hf' config.json
   * and model.safetensors are implied). The config and tokenizer files are fetched when the repository has them.
   */
  files: (string | PretrainedFile)[];
  /** Overrides the config's quick_gelu (OpenAI weights: true). */
  quick_gelu?: boolean;
  /** Overrides of the preprocessing statistics. */
  preprocess?: { mean?: [number, number, number]; std?: [number, number, number] };
  /** A model folder shipped inside the clipfit package (under models/): used as is, never downloaded. */
  shipped?: string;
}

export interface ModelEntry {
  name: string;
  cfg: ClipModelCfg;
  /** Where the config came from (a file name), for messages. */
  source: string;
  pretrained: Map<string, PretrainedSpec>;
}

/** Extra models and tags, e.g. from the CLIPFIT_REGISTRY file or a resolveModel option. */
export interface RegistryExtension {
  /** Model name → open_clip model config JSON. */
  models?: Record<string, unknown>;
  /** Model name → tag → spec. */
  pretrained?: Record<string, Record<string, PretrainedSpec>>;
}

export interface PretrainedDescription {
  tag: string;
  /** `name::tag`, what resolveModel takes. */
  id: string;
  repo: string;
  revision: string;
  layout: Layout;
  files: string[];
  quick_gelu: boolean;
  /** The folder inside the package when the weights ship with clipfit. */
  shipped?: string;
}

export interface ModelDescription {
  name: string;
  embed_dim: number;
  params: number;
  image_size: number;
  patch_size: number;
  context_length: number;
  quick_gelu: boolean;
  pretrained: PretrainedDescription[];
}

const OPEN_CLIP_WEIGHTS = ['open_clip_model.safetensors'];
const INCEPTION: [number, number, number] = [0.5, 0.5, 0.5];

/** Built-in tags. Extend with registerPretrained() (or a RegistryExtension) rather than editing in place. */
export const PRETRAINED: Record<string, Record<string, PretrainedSpec>> = {
  // clipfit's own base model, trained from scratch on icon sets by `npm run pretrain:base`
  // (models/ViT-T-8-64-icons/MODEL_CARD.md); the default when no model is named.
  'ViT-T-8-64': {
    icons: { repo: 'clipfit/ViT-T-8-64-icons', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, shipped: 'ViT-T-8-64-icons' },
  },
  'ViT-B-32': {
    openai: { repo: 'timm/vit_base_patch32_clip_224.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
    laion2b_s34b_b79k: { repo: 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS },
  },
  'ViT-B-32-quickgelu': {
    openai: { repo: 'timm/vit_base_patch32_clip_224.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
  },
  'ViT-B-16': {
    openai: { repo: 'timm/vit_base_patch16_clip_224.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
  },
  'ViT-B-16-quickgelu': {
    openai: { repo: 'timm/vit_base_patch16_clip_224.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
  },
  'ViT-L-14': {
    openai: { repo: 'timm/vit_large_patch14_clip_224.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
    laion2b_s32b_b82k: {
      repo: 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K',
      layout: 'open_clip',
      files: ['open_clip_pytorch_model.safetensors'],
      preprocess: { mean: INCEPTION, std: INCEPTION },
    },
  },
  'ViT-L-14-quickgelu': {
    openai: { repo: 'timm/vit_large_patch14_clip_224.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
  },
  'ViT-L-14-336': {
    openai: { repo: 'timm/vit_large_patch14_clip_336.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
  },
  'ViT-L-14-336-quickgelu': {
    openai: { repo: 'timm/vit_large_patch14_clip_336.openai', layout: 'open_clip', files: OPEN_CLIP_WEIGHTS, quick_gelu: true },
  },
};

/** `name::tag` of the model used when none is given. */
export const DEFAULT_MODEL = 'ViT-T-8-64::icons';

/** models/<name> in the package root (from src/models/clip/weights or dist/models/clip/weights alike). */
export function shippedModelDir(name: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '../../../../models', name);
}

/** The folder of config JSONs: models/clip/configs (src/), or the package's src/ when running from dist/. */
function configsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../configs'), path.resolve(here, '../../../../src/models/clip/configs')];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new ConfigError('configs', `model config folder not found (looked in ${candidates.join(', ')})`);
  return found;
}

function fileName(f: string | PretrainedFile): string {
  return typeof f === 'string' ? f : f.name;
}

function checkSpec(spec: PretrainedSpec, field: string, source: string): PretrainedSpec {
  if (typeof spec !== 'object' || spec === null) throw new ConfigError(field, 'must be an object', source);
  if (typeof spec.repo !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(spec.repo))
    throw new ConfigError(`${field}.repo`, `must be 'owner/name', got ${JSON.stringify(spec.repo)}`, source);
  if (spec.layout !== 'open_clip' && spec.layout !== 'hf') throw new ConfigError(`${field}.layout`, `must be 'open_clip' or 'hf', got ${JSON.stringify(spec.layout)}`, source);
  if (!Array.isArray(spec.files) || spec.files.length === 0) throw new ConfigError(`${field}.files`, 'must list at least one file', source);
  for (const f of spec.files) {
    const n = fileName(f);
    if (typeof n !== 'string' || !n || n.split('/').some((p) => p === '..' || p === '.' || p === ''))
      throw new ConfigError(`${field}.files`, `bad file name ${JSON.stringify(n)}`, source);
    if (typeof f === 'object' && f.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(f.sha256))
      throw new ConfigError(`${field}.files`, `sha256 of '${n}' must be 64 lowercase hex digits`, source);
  }
  if (spec.shipped !== undefined && (typeof spec.shipped !== 'string' || !/^[\w.-]+$/.test(spec.shipped) || spec.shipped.startsWith('.')))
    throw new ConfigError(`${field}.shipped`, `must be a folder name under models/, got ${JSON.stringify(spec.shipped)}`, source);
  // A branch, tag, commit, or a pull-request ref such as refs/pr/32.
  if (spec.revision !== undefined && (typeof spec.revision !== 'string' || !/^[\w.-]+(\/[\w.-]+)*$/.test(spec.revision) || spec.revision.split('/').some((p) => p === '..' || p === '.')))
    throw new ConfigError(`${field}.revision`, `bad revision ${JSON.stringify(spec.revision)}`, source);
  return spec;
}

export class ModelRegistry {
  readonly models = new Map<string, ModelEntry>();

  /** Add (or replace) a model from its open_clip config JSON. */
  registerModel(name: string, cfgJson: unknown, source = `${name}.json`): ModelEntry {
    const cfg = parseModelConfig(cfgJson, source);
    const prev = this.models.get(name);
    const entry: ModelEntry = { name, cfg, source, pretrained: prev?.pretrained ?? new Map() };
    this.models.set(name, entry);
    return entry;
  }

  /** Add (or replace) a pretrained tag of a known model. */
  registerPretrained(name: string, tag: string, spec: PretrainedSpec, source = 'registry'): void {
    const entry = this.get(name);
    if (!/^[\w.-]+$/.test(tag)) throw new ConfigError(`pretrained.${name}.${tag}`, 'a tag may hold letters, digits, _ . - only', source);
    entry.pretrained.set(tag, checkSpec(spec, `pretrained.${name}.${tag}`, source));
  }

  extend(ext: RegistryExtension, source: string): this {
    for (const [name, json] of Object.entries(ext.models ?? {})) this.registerModel(name, json, `${source}: models.${name}`);
    for (const [name, tags] of Object.entries(ext.pretrained ?? {}))
      for (const [tag, spec] of Object.entries(tags)) this.registerPretrained(name, tag, spec, source);
    return this;
  }

  clone(): ModelRegistry {
    const r = new ModelRegistry();
    for (const [k, e] of this.models) r.models.set(k, { ...e, pretrained: new Map(e.pretrained) });
    return r;
  }

  get(name: string): ModelEntry {
    const e = this.models.get(name);
    if (!e) throw new UnknownModelError(name, `unknown model; known: ${[...this.models.keys()].join(', ')}`);
    return e;
  }

  /** The spec of `name::tag` and the config it loads with (tag overrides applied). */
  pretrained(name: string, tag: string): { entry: ModelEntry; spec: PretrainedSpec; config: ClipConfig } {
    const entry = this.get(name);
    const spec = entry.pretrained.get(tag);
    if (!spec) {
      const tags = [...entry.pretrained.keys()];
      throw new UnknownModelError(`${name}::${tag}`, `unknown pretrained tag; ${name} has ${tags.length ? tags.join(', ') : 'no pretrained tags'}`);
    }
    const model_cfg: ClipModelCfg = { ...entry.cfg, quick_gelu: spec.quick_gelu ?? entry.cfg.quick_gelu };
    const pp: PreprocessCfg = defaultPreprocess(model_cfg);
    if (spec.preprocess?.mean) pp.mean = [...spec.preprocess.mean];
    if (spec.preprocess?.std) pp.std = [...spec.preprocess.std];
    return { entry, spec, config: { name: `${name}::${tag}`, model_cfg, preprocess_cfg: pp } };
  }

  describe(): ModelDescription[] {
    return [...this.models.values()].map((e) => ({
      name: e.name,
      embed_dim: e.cfg.embed_dim,
      params: countParams(e.cfg),
      image_size: e.cfg.vision_cfg.image_size,
      patch_size: e.cfg.vision_cfg.patch_size,
      context_length: e.cfg.text_cfg.context_length,
      quick_gelu: e.cfg.quick_gelu,
      pretrained: [...e.pretrained].map(([tag, s]) => ({
        tag,
        id: `${e.name}::${tag}`,
        repo: s.repo,
        revision: s.revision ?? 'main',
        layout: s.layout,
        files: s.files.map(fileName),
        quick_gelu: s.quick_gelu ?? e.cfg.quick_gelu,
        ...(s.shipped ? { shipped: shippedModelDir(s.shipped) } : {}),
      })),
    }));
  }
}

let builtin: ModelRegistry | null = null;

/** The registry of built-in configs and tags (created on first use; shared, so registrations stick). */
export function defaultRegistry(): ModelRegistry {
  if (builtin) return builtin;
  const r = new ModelRegistry();
  const dir = configsDir();
  const names = readdirSync(dir).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length));
  for (const name of names.sort()) {
    const f = `${name}.json`;
    const file = path.join(dir, f);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError('(root)', `not valid JSON (${(err as Error).message})`, file);
    }
    r.registerModel(name, json, f);
  }
  for (const [name, tags] of Object.entries(PRETRAINED)) for (const [tag, spec] of Object.entries(tags)) r.registerPretrained(name, tag, spec, 'registry.ts');
  builtin = r;
  return r;
}

/** Add a model to the default registry (e.g. a shipped base model). */
export function registerModel(name: string, cfgJson: unknown, source?: string): ModelEntry {
  return defaultRegistry().registerModel(name, cfgJson, source);
}

/** Add a pretrained tag to the default registry. */
export function registerPretrained(name: string, tag: string, spec: PretrainedSpec): void {
  defaultRegistry().registerPretrained(name, tag, spec);
}

/** Every known model: name, embedding width, parameter count, sizes, and its pretrained tags with their repositories. */
export function describeModels(registry: ModelRegistry = defaultRegistry()): ModelDescription[] {
  return registry.describe();
}

/** Split `name::tag`; null when the string has no `::`. */
export function parseModelId(id: string): { name: string; tag: string } | null {
  const i = id.indexOf('::');
  if (i < 0) return null;
  return { name: id.slice(0, i), tag: id.slice(i + 2) };
}
