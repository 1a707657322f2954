// Model resolution: `name::tag` → a local model folder in the cache, fetched from a Hugging Face–style
// hub when it is not there yet (transfers: hub_download.ts).
//   cache:    $CLIPFIT_HOME (default ~/.cache/clipfit) /models/<repo>/<revision>/<file>, the repository's
//             own file names
//   fetched:  the registry's files (the weights, with the hub's LFS sha256), and what the repository
//             holds of: its config (open_clip_config.json / config.json; for open_clip a 404 means the
//             registry's config is written instead), preprocessor_config.json (HF), tokenizer files
//             (vocab.json + merges.txt, else tokenizer.json). Optional files may 404.
//   config:   the registry fixes the architecture (its model config, the tag's quick_gelu); the
//             repository's config must describe the same architecture and supplies the preprocessing
//             except where the tag sets mean/std.
//   checked:  before the weights are fetched, the config parses and agrees with the registry and the
//             tokenizer files parse; after, each safetensors file is as long as its header says.
//   commit:   the config file is renamed into place last, so a folder with its config is complete.
//             A repository that lacks a file or holds a bad one is a HubFileError and its folder is
//             removed; a broken connection keeps what arrived (a .part resumes).
//   offline:  CLIPFIT_OFFLINE=1 (or the option) reads the cache only

import { existsSync, readFileSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClipfitError, ConfigError, DownloadError, HubFileError, OfflineError, TokenizerFileError, UnknownModelError } from '../../../errors.js';
import { CLIP_VOCAB_SIZE } from '../text/bundled_bpe.js';
import { detectLayout, HF_CONFIG, HF_PREPROCESSOR, HF_WEIGHTS, hfTokenizerName, OPEN_CLIP_CONFIG, tokenizerFilesIn } from './checkpoint.js';
import type { ClipConfig, ClipModelCfg } from '../config.js';
import { parseOpenClipConfig, toOpenClipConfigJson } from '../config.js';
import { hfConfigToModelCfg } from './hf_keys.js';
import { checkUrl, downloadFile, fileUrl } from './hub_download.js';
import type { Layout, PretrainedFile, PretrainedSpec, RegistryExtension } from './registry.js';
import { defaultRegistry, ModelRegistry, parseModelId, shippedModelDir } from './registry.js';
import { ClipTokenizer } from '../text/tokenizer.js';

export { checkUrl, downloadFile, etagSha256, fileUrl } from './hub_download.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface DownloadProgress {
  /** `name::tag`. */
  model: string;
  repo: string;
  file: string;
  /** Bytes of the file on disk so far (a resumed part counts). */
  received: number;
  /** Full size when the server says, else null. */
  total: number | null;
  done: boolean;
}

export interface ResolveOptions {
  /** Cache root (default $CLIPFIT_HOME or ~/.cache/clipfit). */
  home?: string;
  /** Hub base URL (default $CLIPFIT_HUB_URL or https://huggingface.co). http:// only for loopback hosts. */
  hubUrl?: string;
  /** Use only the cache (default: $CLIPFIT_OFFLINE is 1/true). */
  offline?: boolean;
  /** Extra models and tags on top of the built-in registry and $CLIPFIT_REGISTRY, or a registry to use as is. */
  registry?: RegistryExtension | ModelRegistry;
  onProgress?: (p: DownloadProgress) => void;
  /** Resumed attempts after a broken transfer (default 3). */
  retries?: number;
  /** Bearer token for the hub (default $HF_TOKEN); never sent to another origin. */
  token?: string;
  signal?: AbortSignal;
  /** Environment to read CLIPFIT_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

function homeDir(opts: ResolveOptions, env: NodeJS.ProcessEnv): string {
  return path.resolve(opts.home ?? env['CLIPFIT_HOME'] ?? path.join(os.homedir(), '.cache', 'clipfit'));
}

/** The cache folder of one repository revision. */
export function cacheDirFor(repo: string, revision: string, home: string): string {
  return path.join(home, 'models', ...repo.split('/'), revision);
}

/** The built-in registry plus $CLIPFIT_REGISTRY (a JSON RegistryExtension file) plus the option. */
export function hubRegistry(opts: ResolveOptions = {}): ModelRegistry {
  if (opts.registry instanceof ModelRegistry) return opts.registry;
  const env = opts.env ?? process.env;
  const r = defaultRegistry().clone();
  const file = env['CLIPFIT_REGISTRY'];
  if (file) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError('CLIPFIT_REGISTRY', `cannot read ${file}: ${(err as Error).message}`, file);
    }
    r.extend(json as RegistryExtension, file);
  }
  if (opts.registry) r.extend(opts.registry, 'options.registry');
  return r;
}


const fileName = (f: string | PretrainedFile) => (typeof f === 'string' ? f : f.name);

/** The file whose presence marks a complete folder: renamed into place last. */
const markerOf = (layout: Layout) => (layout === 'open_clip' ? OPEN_CLIP_CONFIG : HF_CONFIG);

/** Files the folder cannot do without: the registry's, and for the HF layout its config and weights. */
function requiredFiles(spec: PretrainedSpec): string[] {
  const need = spec.files.map(fileName);
  if (spec.layout === 'hf') need.push(HF_CONFIG, HF_WEIGHTS);
  return [...new Set(need)];
}

function missingFiles(dir: string, spec: PretrainedSpec): string[] {
  return [...new Set([...requiredFiles(spec), markerOf(spec.layout)])].filter((f) => !existsSync(path.join(dir, f)));
}

async function removeEmptyDirs(dir: string, stopAt: string): Promise<void> {
  let d = dir;
  while (d.startsWith(stopAt + path.sep) && d !== stopAt) {
    try {
      await fsp.rmdir(d);
    } catch {
      return;
    }
    d = path.dirname(d);
  }
}

/** One repository revision being fetched: where, from what, and how to name its files in errors. */
interface RepoFetch {
  model: string;
  repo: string;
  revision: string;
  base: string;
  dir: string;
  opts: ResolveOptions;
  token: string | undefined;
}

function hubError(r: RepoFetch, file: string, detail: string, cause?: unknown): HubFileError {
  return new HubFileError(r.repo, r.revision, file, fileUrl(r.base, r.repo, r.revision, file), detail, cause !== undefined ? { cause } : undefined);
}

/** Fetch one file into `dest` (default: its own name in the folder); null when optional and absent. */
async function fetchFile(r: RepoFetch, name: string, o: { optional?: boolean; sha256?: string; dest?: string } = {}): Promise<string | null> {
  const dest = o.dest ?? path.join(r.dir, name);
  const url = fileUrl(r.base, r.repo, r.revision, name);
  let got;
  try {
    got = await downloadFile(url, dest, {
      ...(o.sha256 ? { sha256: o.sha256 } : {}),
      ...(o.optional ? { optional: true } : {}),
      ...(r.opts.retries !== undefined ? { retries: r.opts.retries } : {}),
      ...(r.token ? { token: r.token } : {}),
      ...(r.opts.signal ? { signal: r.opts.signal } : {}),
      onProgress: (received, total, done) => r.opts.onProgress?.({ model: r.model, repo: r.repo, file: name, received, total, done }),
    });
  } catch (err) {
    if (err instanceof DownloadError && / HTTP 404/.test(err.message))
      throw hubError(
        r,
        name,
        `the repository has no such file (HTTP 404). Its files are listed at https://huggingface.co/${r.repo}/tree/${r.revision}; ` +
          `clipfit reads open_clip_model.safetensors (or open_clip_pytorch_model.safetensors) with open_clip_config.json, or model.safetensors with config.json, ` +
          `never .bin pickles: name the right file in the registry entry of '${r.model}' (CLIPFIT_REGISTRY), or convert the weights and load the folder`,
        err,
      );
    throw err;
  }
  return got ? dest : null;
}

async function readJsonFile(r: RepoFetch, file: string, name: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    throw hubError(r, name, `is not valid JSON (${(err as Error).message}); the repository's copy is broken or the download was cut short: run again, and if it persists load a folder with a good copy`, err);
  }
}

const sameCfg = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The registry's architecture against the repository's, field by field; a difference is a HubFileError. */
function checkArchitecture(r: RepoFetch, file: string, repoCfg: ClipModelCfg, reg: ClipModelCfg): void {
  const fields: [string, unknown, unknown][] = [['embed_dim', repoCfg.embed_dim, reg.embed_dim]];
  for (const tower of ['vision_cfg', 'text_cfg'] as const)
    for (const [k, v] of Object.entries(reg[tower])) fields.push([`${tower}.${k}`, (repoCfg[tower] as unknown as Record<string, unknown>)[k], v]);
  for (const [field, got, want] of fields)
    if (!sameCfg(got, want))
      throw hubError(
        r,
        file,
        `model_cfg.${field} is ${JSON.stringify(got)}, the registry's config for '${r.model}' has ${JSON.stringify(want)}: the repository does not hold the model the registry names; fix the registry entry (CLIPFIT_REGISTRY) or load the downloaded folder as a folder`,
      );
}

/**
 * The open_clip_config.json to write: the repository's, on the registry's architecture and
 * quick_gelu, with the tag's mean/std when it sets them; null input gives the registry's own.
 */
function effectiveOpenClipConfig(r: RepoFetch, raw: unknown, reg: ClipConfig, spec: PretrainedSpec): Record<string, unknown> {
  const own = toOpenClipConfigJson(reg);
  if (raw === null) return own;
  let parsed: ClipConfig;
  try {
    parsed = parseOpenClipConfig(raw, `${r.repo}/${OPEN_CLIP_CONFIG}`, reg.name);
  } catch (err) {
    if (!(err instanceof ClipfitError)) throw err;
    throw hubError(r, OPEN_CLIP_CONFIG, `is not a config clipfit can load: ${err.message}`, err);
  }
  checkArchitecture(r, OPEN_CLIP_CONFIG, parsed.model_cfg, reg.model_cfg);
  const rawObj = raw as { model_cfg: Record<string, unknown>; preprocess_cfg?: Record<string, unknown> };
  const pp = { ...(rawObj.preprocess_cfg ?? {}), mean: spec.preprocess?.mean ?? parsed.preprocess_cfg.mean, std: spec.preprocess?.std ?? parsed.preprocess_cfg.std };
  return { ...rawObj, name: reg.name, model_cfg: { ...rawObj.model_cfg, quick_gelu: reg.model_cfg.quick_gelu }, preprocess_cfg: pp };
}

/** Parse the tokenizer files fetched so far; a file that does not parse is a HubFileError. */
async function checkTokenizer(r: RepoFetch, layout: Layout, config: ClipModelCfg, openClipJson: unknown): Promise<void> {
  const files = tokenizerFilesIn(r.dir, layout);
  if (!files) {
    const hf = hfTokenizerName(openClipJson);
    if (layout === 'open_clip' && hf)
      throw hubError(
        r,
        OPEN_CLIP_CONFIG,
        `names the Hugging Face tokenizer '${hf}' (text_cfg.hf_tokenizer_name) and the repository has none of its files (tokenizer.json, or vocab.json + merges.txt): put them from https://huggingface.co/${hf} beside the weights in a folder and load that folder, or pass the tokenizer option`,
      );
    if (layout === 'hf' || config.text_cfg.vocab_size !== CLIP_VOCAB_SIZE)
      throw hubError(
        r,
        'vocab.json',
        `the repository has no tokenizer files (vocab.json + merges.txt or tokenizer.json)${layout === 'open_clip' ? ` and its vocabulary (${config.text_cfg.vocab_size}) is not OpenAI's BPE` : ''}: add them to a folder with the weights and load that folder, or pass the tokenizer option`,
      );
    return;
  }
  const name = files.kind === 'vocab-merges' ? 'vocab.json + merges.txt' : path.basename(files.file);
  try {
    if (files.kind === 'vocab-merges') await ClipTokenizer.fromVocabMerges(files.vocab, files.merges);
    else if (files.kind === 'tokenizer-json') await ClipTokenizer.fromTokenizerJson(files.file);
    else await ClipTokenizer.fromBpeGz(files.file);
  } catch (err) {
    if (!(err instanceof ClipfitError)) throw err;
    const bad = err instanceof TokenizerFileError ? path.basename(err.file) : name;
    throw hubError(r, bad, `does not parse as a CLIP tokenizer (${err.message}); the repository's copy is broken: load a folder with good tokenizer files, or pass the tokenizer option`, err);
  }
}

/** A safetensors file must be exactly as long as its header says: else it was cut short. */
async function checkSafetensorsLength(r: RepoFetch, name: string): Promise<void> {
  const file = path.join(r.dir, name);
  const size = statSync(file).size;
  const fh = await fsp.open(file, 'r');
  let detail: string | null = null;
  try {
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const n = size >= 8 ? Number(lenBuf.readBigUInt64LE(0)) : Infinity;
    if (8 + n > size) detail = `holds ${size} bytes, less than its own header (${size >= 8 ? 8 + n : 8} bytes)`;
    else {
      const head = Buffer.alloc(n);
      await fh.read(head, 0, n, 8);
      let end = 0;
      try {
        for (const [k, v] of Object.entries(JSON.parse(head.toString('utf8')) as Record<string, { data_offsets?: [number, number] }>))
          if (k !== '__metadata__' && Array.isArray(v?.data_offsets)) end = Math.max(end, v.data_offsets[1]);
        if (8 + n + end !== size) detail = `holds ${size} bytes, its header describes ${8 + n + end}`;
      } catch (err) {
        detail = `has a header that is not JSON (${(err as Error).message})`;
      }
    }
  } finally {
    await fh.close();
  }
  if (detail) throw hubError(r, name, `${detail}: the download was cut short or the repository's copy is broken; run again to fetch it anew`);
}

/** Fetch a repository revision into `r.dir` (see the header); the caller removes the folder on a permanent error. */
async function fetchRepo(r: RepoFetch, spec: PretrainedSpec, reg: ClipConfig): Promise<void> {
  await fsp.mkdir(r.dir, { recursive: true });
  const marker = markerOf(spec.layout);
  const staged = path.join(r.dir, `.${marker}.fetched`);
  try {
    // 1. The config (staged under another name: it goes into place last), checked against the registry.
    let markerJson: unknown;
    let modelCfg: ClipModelCfg;
    if (spec.layout === 'open_clip') {
      const got = await fetchFile(r, OPEN_CLIP_CONFIG, { optional: true, dest: staged });
      const raw = got ? await readJsonFile(r, got, OPEN_CLIP_CONFIG) : null;
      markerJson = effectiveOpenClipConfig(r, raw, reg, spec);
      modelCfg = reg.model_cfg;
      await fsp.writeFile(staged, JSON.stringify(markerJson, null, 2) + '\n');
    } else {
      const sha = spec.files.find((f): f is PretrainedFile => typeof f === 'object' && f.name === HF_CONFIG)?.sha256;
      await fetchFile(r, HF_CONFIG, { dest: staged, ...(sha ? { sha256: sha } : {}) });
      markerJson = await readJsonFile(r, staged, HF_CONFIG);
      try {
        modelCfg = hfConfigToModelCfg(markerJson, `${r.repo}/${HF_CONFIG}`);
      } catch (err) {
        if (!(err instanceof ClipfitError)) throw err;
        throw hubError(r, HF_CONFIG, `is not a CLIP config clipfit can load: ${err.message}`, err);
      }
      checkArchitecture(r, HF_CONFIG, { ...modelCfg, quick_gelu: reg.model_cfg.quick_gelu }, reg.model_cfg);
    }
    // 2. Small files the repository may hold, then the tokenizer check.
    const required = requiredFiles(spec).filter((f) => f !== marker);
    const optional = [...(spec.layout === 'hf' ? [HF_PREPROCESSOR] : []), 'vocab.json', 'merges.txt'].filter((f) => !required.includes(f));
    for (const f of optional) if (!existsSync(path.join(r.dir, f))) await fetchFile(r, f, { optional: true });
    if (!tokenizerFilesIn(r.dir, spec.layout) && !required.includes('tokenizer.json')) await fetchFile(r, 'tokenizer.json', { optional: true });
    // Registry-listed small files (e.g. a pinned tokenizer) come before the check too.
    const small = (f: string) => !f.endsWith('.safetensors');
    for (const f of spec.files) {
      const name = fileName(f);
      if (name === marker || !small(name) || existsSync(path.join(r.dir, name))) continue;
      await fetchFile(r, name, typeof f === 'object' && f.sha256 ? { sha256: f.sha256 } : {});
    }
    await checkTokenizer(r, spec.layout, modelCfg, markerJson);
    // 3. The weights, each checked against its sha256 and its own header.
    for (const name of required) {
      if (!existsSync(path.join(r.dir, name))) {
        const f = spec.files.find((x) => fileName(x) === name);
        await fetchFile(r, name, typeof f === 'object' && f.sha256 ? { sha256: f.sha256 } : {});
      }
      if (name.endsWith('.safetensors')) await checkSafetensorsLength(r, name);
    }
    // 4. Commit.
    await fsp.rename(staged, path.join(r.dir, marker));
  } finally {
    await fsp.rm(staged, { force: true });
  }
}

/**
 * A model folder for `name::tag` (downloaded into the cache if needed) or for a folder path
 * (checked to be a model folder). Returns the absolute folder path.
 */
export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const id = parseModelId(spec);
  if (!id) {
    if (existsSync(spec) && statSync(spec).isDirectory()) {
      // A LoRA adapter folder (lora_adapter.ts) names its base model; ClipModel.load puts it on.
      if (existsSync(path.join(spec, 'adapter_config.json'))) return path.resolve(spec);
      detectLayout(spec);
      return path.resolve(spec);
    }
    const reg = hubRegistry(opts);
    const entry = reg.models.get(spec);
    if (entry) {
      const tags = [...entry.pretrained.keys()].map((t) => `${spec}::${t}`);
      throw new UnknownModelError(spec, `name a pretrained tag as name::tag${tags.length ? ` (${tags.join(', ')})` : ''}, or give a model folder`);
    }
    throw new UnknownModelError(spec, "neither a model folder nor a known 'name::tag'");
  }
  const reg = hubRegistry(opts);
  const { spec: pre, config } = reg.pretrained(id.name, id.tag);
  if (pre.shipped) {
    const shipped = shippedModelDir(pre.shipped);
    if (!existsSync(path.join(shipped, OPEN_CLIP_CONFIG))) throw new UnknownModelError(spec, `the shipped model folder ${shipped} is missing from this installation`);
    return shipped;
  }
  const revision = pre.revision ?? 'main';
  const home = homeDir(opts, env);
  const dir = cacheDirFor(pre.repo, revision, home);
  const missing = missingFiles(dir, pre);
  if (missing.length === 0) return dir;

  const offline = opts.offline ?? ['1', 'true', 'yes'].includes((env['CLIPFIT_OFFLINE'] ?? '').toLowerCase());
  if (offline) throw new OfflineError(spec, dir, `offline mode and ${missing.join(', ')} not in the cache; run once online or point to a model folder`);

  const base = checkUrl(opts.hubUrl ?? env['CLIPFIT_HUB_URL'] ?? DEFAULT_HUB_URL, opts.hubUrl ? 'hubUrl' : 'CLIPFIT_HUB_URL').href;
  const r: RepoFetch = { model: spec, repo: pre.repo, revision, base, dir, opts, token: opts.token ?? env['HF_TOKEN'] };
  try {
    await fetchRepo(r, pre, config);
  } catch (err) {
    // A broken connection keeps what arrived for the next try; anything else leaves nothing behind.
    if (!(err instanceof DownloadError && err.resumable)) {
      await fsp.rm(dir, { recursive: true, force: true });
      await removeEmptyDirs(path.dirname(dir), path.join(home, 'models'));
    }
    throw err;
  }
  detectLayout(dir);
  return dir;
}
