// `clipfit index add | search | rebuild | info | remove`: a text-to-image search index over image
// files, embedded by a model's clip-vision tower and queried through its clip-text tower. The index
// (src/search) records which model its vectors came from; add and search refuse another model,
// rebuild re-encodes every image from its metadata.uri with the new one and relabels the index.

import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { encode, getModel } from '../../inference/index.js';
import type { InferenceModel } from '../../inference/index.js';
import { modelIdOf } from '../../search/model_id.js';
import { FolderIndex } from '../../search/folder_index.js';
import { claimIndexRoot, rootLayout } from '../../search/index_root.js';
import { repairFolderIndex } from '../../search/repair.js';
import { ImageStore } from '../../server/images.js';
import { openPgServeIndex } from '../../server/index_pg.js';
import type { PgServeIndex } from '../../server/index_pg.js';
import { sniffImageType } from '../../data/image_source.js';
import { createHash } from 'node:crypto';
import { openIndex, redact, resolveIndexSpec } from '../../search/open_index.js';
import type { IndexItem, VectorIndex } from '../../search/index_types.js';

type Print = (line: string) => void;

export const INDEX_IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif'];

const isImage = (p: string): boolean => INDEX_IMAGE_EXTENSIONS.includes(path.extname(p).toLowerCase());

const positiveInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(flag, `must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

/** Image files named by `inputs` (files, or folders walked recursively), absolute, sorted, unique. */
export async function collectImages(inputs: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && isImage(p)) out.add(p);
    }
  };
  for (const input of inputs) {
    const p = path.resolve(input);
    if (!existsSync(p)) throw new ConfigError('files', `no such file or folder: ${input}`);
    if (statSync(p).isDirectory()) await walk(p);
    else if (isImage(p)) out.add(p);
    else throw new ConfigError('files', `${input} is not an image file (${INDEX_IMAGE_EXTENSIONS.join(', ')})`);
  }
  return [...out].sort();
}

interface ModelOpts {
  model: string;
  onnx?: boolean;
  tokenizer?: string;
  batchSize: number;
}

async function loadTower(o: ModelOpts, tower: 'clip-text' | 'clip-vision'): Promise<{ model: InferenceModel; id: string }> {
  const model = await getModel(o.model, { selectModel: tower, isOnnx: o.onnx, tokenizer: o.tokenizer });
  return { model, id: await modelIdOf(model.artifact) };
}

/** Unit embeddings of image files, batch by batch; `each` gets every batch as index items. */
async function embedImages(model: InferenceModel, files: readonly string[], batchSize: number, each: (items: IndexItem[]) => Promise<void>): Promise<void> {
  const dim = model.embedDim;
  for (let i = 0; i < files.length; i += batchSize) {
    const batch = files.slice(i, i + batchSize);
    const e = await encode(model, batch, { batchSize, normalize: true });
    await each(batch.map((f, j) => ({ id: f, vector: e.data.slice(j * dim, (j + 1) * dim), metadata: { uri: f } })));
  }
}

function refuseOtherModel(index: VectorIndex, spec: string, modelId: string, modelSpec: string): void {
  if (index.needsRebuild(modelId))
    throw new ConfigError('--model', `index ${spec} holds embeddings of model ${index.model}, not of ${modelId} (${modelSpec}); re-encode it with: clipfit index rebuild --index ${spec} --model ${modelSpec}`);
}

/** An index that must exist already (search, rebuild, info, remove never create one). */
async function openExisting(spec: string, name: string | undefined, command: string): Promise<VectorIndex> {
  const loc = resolveIndexSpec(spec);
  if (loc.backend === 'folder' && !existsSync(path.join(rootLayout(loc.dir).primary, 'meta.json')) && !existsSync(path.join(loc.dir, 'meta.json')))
    throw new ConfigError('--index', `no index ${spec} (${loc.dir}); create it with: clipfit index add --index ${spec} --model MODEL FILES...`);
  return openIndex(spec, { name, purpose: `clipfit index ${command}` });
}

/**
 * The image to re-encode an item from: its metadata.uri (items added by `index add`), else the image
 * a server stored for it under ROOT/images.
 */
function sourceOf(id: string, metadata: Record<string, unknown> | undefined, root: string | null): string | undefined {
  if (typeof metadata?.['uri'] === 'string') return metadata['uri'] as string;
  return root ? new ImageStore(rootLayout(root).images).find(id)?.file : undefined;
}

const withModelOptions = (c: Command): Command =>
  c
    .requiredOption('--model <model>', 'a model folder, a fit() artifact or name::tag')
    .option('--onnx', "run the artifact's exported ONNX towers")
    .option('--tokenizer <path>', 'tokenizer folder or bpe_simple_vocab_16e6.txt.gz when the model folder has none')
    .option('--batch-size <n>', 'images per model run', positiveInt('--batch-size'), 32);

const withIndexOption = (c: Command): Command =>
  c
    .requiredOption('--index <index>', 'an index name (under $CLIPFIT_HOME/indexes), a folder, pglite:DIR or postgres://…')
    .option('--name <name>', 'the index inside a pglite/Postgres database (default: default)');

/**
 * The id of an image file in a Postgres index: its name, made safe for a server's /images/:id, and
 * 12 hex digits of sha256(absolute path), so adding the same file again replaces it.
 */
export function pgImageId(file: string): string {
  const base = path.basename(file).replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '').slice(0, 100);
  return `${base || 'image'}-${createHash('sha256').update(file).digest('hex').slice(0, 12)}`;
}

/**
 * `index add` into an index that `clipfit serve` replicas share: the replicas cannot read this
 * machine's files, so each image is stored in the database beside its vector, both in one
 * transaction per batch (what a server's POST /index writes), under an id /images/:id can serve.
 */
async function addToPostgres(url: string, name: string, files: readonly string[], o: ModelOpts & { index: string; json?: boolean }, print: Print): Promise<void> {
  const images = await Promise.all(
    files.map(async (f) => {
      const bytes = new Uint8Array(await fsp.readFile(f));
      const type = sniffImageType(bytes);
      if (!type) throw new ConfigError('files', `${f}: not a PNG, JPEG, WebP or GIF image (by its first bytes)`);
      return { file: f, id: pgImageId(f), bytes, type };
    }),
  );
  const { model, id } = await loadTower(o, 'clip-vision');
  let pgi: PgServeIndex | undefined;
  try {
    pgi = await openPgServeIndex(url, name, { dim: model.embedDim, model: id });
    refuseOtherModel(pgi.primary, o.index, id, o.model);
    const { primary, store } = pgi;
    const byFile = new Map(images.map((im) => [im.file, im]));
    await embedImages(model, files, o.batchSize, (items) =>
      store.transaction!(async () => {
        for (const it of items) {
          const im = byFile.get(it.id)!;
          await store.images.put(im.id, im.bytes, im.type);
        }
        await primary.add(items.map((it) => ({ id: byFile.get(it.id)!.id, vector: it.vector, metadata: { uri: it.id, filename: path.basename(it.id) } })));
      }),
    );
    const size = await primary.size();
    const shown = redact(o.index);
    if (o.json) print(JSON.stringify({ index: shown, added: files.length, size, model: id, ids: images.map((im) => im.id) }, null, 2));
    else print(`added ${files.length} image(s) with their files to index ${shown} (${size} in all, model ${id})`);
  } finally {
    await pgi?.close();
    await model.release();
  }
}

export function registerIndexCommands(program: Command, print: Print = (line) => console.log(line)): void {
  const ix = program.command('index').description('Text-to-image search indexes over image files ($CLIPFIT_HOME/indexes/NAME, a folder, pglite:DIR or postgres://)');

  withModelOptions(withIndexOption(ix.command('add <files...>')))
    .description('Embed image files (png, jpg, jpeg, webp, gif; folders are walked) and upsert them, id = absolute path')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit index add --index shoes --model runs/shoes/artifact photos/\n  $ clipfit index add --index ./shoes-index --model ViT-B-32::openai a.jpg b.png')
    .action(async (inputs: string[], o: ModelOpts & { index: string; name?: string; json?: boolean }) => {
      const files = await collectImages(inputs);
      if (!files.length) throw new ConfigError('files', `no image files (${INDEX_IMAGE_EXTENSIONS.join(', ')}) in ${inputs.join(', ')}`);
      const loc = resolveIndexSpec(o.index);
      if (loc.backend === 'postgres') return addToPostgres(loc.url, o.name ?? loc.name ?? 'default', files, o, print);
      const { model, id } = await loadTower(o, 'clip-vision');
      let index: VectorIndex | undefined;
      try {
        index = await openIndex(o.index, { dim: model.embedDim, model: id, name: o.name, purpose: 'clipfit index add' });
        refuseOtherModel(index, o.index, id, o.model);
        const target = index;
        await embedImages(model, files, o.batchSize, (items) => target.add(items));
        const size = await index.size();
        if (o.json) print(JSON.stringify({ index: o.index, added: files.length, size, model: id }, null, 2));
        else print(`added ${files.length} image(s) to index ${o.index} (${size} in all, model ${id})`);
      } finally {
        await index?.close();
        await model.release();
      }
    });

  withModelOptions(withIndexOption(ix.command('search <text>')))
    .description('The images nearest to a caption, best first, by cosine similarity')
    .option('-k, --limit <k>', 'how many results', positiveInt('-k'), 10)
    .option('--ef <n>', 'HNSW search breadth (approximate indexes)', positiveInt('--ef'))
    .option('--exact', 'brute-force search even on an approximate index')
    .option('--json', 'print the hits as JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit index search --index shoes --model runs/shoes/artifact "a red sneaker"\n  $ clipfit index search --index shoes --model runs/shoes/artifact "boots" -k 5 --json')
    .action(async (text: string, o: ModelOpts & { index: string; name?: string; limit: number; ef?: number; exact?: boolean; json?: boolean }) => {
      const index = await openExisting(o.index, o.name, 'search');
      try {
        const { model, id } = await loadTower(o, 'clip-text');
        try {
          refuseOtherModel(index, o.index, id, o.model);
          const q = await encode(model, [text], { normalize: true });
          const hits = await index.search(q.data, o.limit, { ef: o.ef, exact: o.exact });
          const rows = hits.map((h, i) => ({ rank: i + 1, id: h.id, score: h.score, uri: typeof h.metadata?.['uri'] === 'string' ? (h.metadata['uri'] as string) : h.id }));
          if (o.json) return print(JSON.stringify(rows, null, 2));
          if (!rows.length) return print(`index ${o.index} is empty`);
          for (const r of rows) print(`${String(r.rank).padStart(3)}  ${r.score.toFixed(4)}  ${r.uri}`);
        } finally {
          await model.release();
        }
      } finally {
        await index.close();
      }
    });

  withModelOptions(withIndexOption(ix.command('rebuild')))
    .description("Re-encode every image of the index (from its metadata.uri) with --model and relabel the index; the old content stays until the new one is complete")
    .addHelpText('after', '\nExample:\n  $ clipfit index rebuild --index shoes --model runs/shoes-v2/artifact')
    .action(async (o: ModelOpts & { index: string; name?: string }) => {
      const index = await openExisting(o.index, o.name, 'rebuild');
      let current: VectorIndex = index;
      try {
        const loc = resolveIndexSpec(o.index);
        const root = loc.backend === 'folder' ? loc.dir : null;
        const entries = await index.list();
        const sources = entries.map((e) => sourceOf(e.id, e.metadata, root));
        const missing = entries.filter((_, i) => sources[i] === undefined).map((e) => e.id);
        if (missing.length) throw new ConfigError('metadata.uri', `${missing.length} item(s) of index ${o.index} have no metadata.uri or stored image to re-encode from, e.g. ${missing.slice(0, 3).join(', ')}`);
        const { model, id } = await loadTower(o, 'clip-vision');
        const items: IndexItem[] = [];
        try {
          const uris = sources as string[];
          let at = 0;
          await embedImages(model, uris, o.batchSize, async (batch) => {
            for (const it of batch) items.push({ id: entries[at]!.id, vector: it.vector, metadata: entries[at++]!.metadata });
          });
        } finally {
          await model.release();
        }
        const before = index.model;
        current = await index.replaceAll(items, { dim: model.embedDim, model: id });
        print(`rebuilt index ${o.index}: ${items.length} image(s) re-encoded, model ${before} -> ${id}`);
      } finally {
        await current.close();
      }
    });

  withIndexOption(ix.command('info'))
    .description('Backend, dimension, model and size of an index')
    .option('--json', 'print JSON')
    .action(async (o: { index: string; name?: string; json?: boolean }) => {
      const loc = resolveIndexSpec(o.index);
      const index = await openExisting(o.index, o.name, 'info');
      try {
        const info = index instanceof FolderIndex ? { ...index.info(), dir: loc.backend === 'folder' ? loc.dir : index.dir, vectors: index.dir } : { ...loc, dim: index.dim, model: index.model, size: await index.size() };
        if (o.json) return print(JSON.stringify(info, null, 2));
        for (const [k, v] of Object.entries(info)) print(`${k}: ${v}`);
      } finally {
        await index.close();
      }
    });

  ix.command('repair [index]')
    .description('Salvage every intact record of a damaged folder index into a new generation, and report what was dropped')
    .option('--index <index>', 'the index (instead of the argument)')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExample:\n  $ clipfit index repair shoes')
    .action(async (name: string | undefined, o: { index?: string; json?: boolean }) => {
      const spec = name ?? o.index;
      if (!spec) throw new ConfigError('index', 'name the index to repair: clipfit index repair NAME');
      const loc = resolveIndexSpec(spec);
      if (loc.backend !== 'folder') throw new ConfigError('index', `${spec}: only folder indexes are repaired here; a database has its own tools`);
      const lock = await claimIndexRoot(loc.dir, 'clipfit index repair', spec);
      try {
        const parts = (['primary', 'compare'] as const).filter((p) => existsSync(path.join(rootLayout(loc.dir)[p], 'meta.json')));
        if (!parts.length) throw new ConfigError('index', `no index ${spec} (${loc.dir})`);
        const reports = [];
        for (const part of parts) reports.push({ part, ...(await repairFolderIndex(rootLayout(loc.dir)[part])) });
        if (o.json) return print(JSON.stringify(reports, null, 2));
        for (const r of reports) {
          print(`repaired ${spec}/${r.part}: ${r.items} item(s) from ${r.records} intact record(s), generation ${r.generation}; ${r.dropped.length ? `dropped ${r.dropped.length} damaged range(s):` : 'nothing was damaged'}`);
          for (const d of r.dropped) print(`  ${path.basename(d.file)} bytes ${d.from}-${d.to} (${d.to - d.from} bytes): ${d.why}`);
          for (const k of r.kept) print(`  the damaged file is kept as ${k}`);
        }
      } finally {
        await lock.release();
      }
    });

  withIndexOption(ix.command('remove <ids...>'))
    .description('Delete items by id (for images added by `index add`, the absolute path)')
    .action(async (ids: string[], o: { index: string; name?: string }) => {
      const index = await openExisting(o.index, o.name, 'remove');
      try {
        for (const id of ids) await index.remove(id.startsWith('/') || !existsSync(id) ? id : path.resolve(id));
        print(`removed ${ids.length} item(s) from index ${o.index} (${await index.size()} left)`);
      } finally {
        await index.close();
      }
    });
}
