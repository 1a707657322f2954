// `clipfit datasets push | pull | list | delete`: the local dataset store (src/data/store.ts), the
// stand-in for Finetuner's cloud push/pull of DocumentArrays.

import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { datasetInfo, datasetsRoot, deleteDataset, listDatasets, loadCsv, loadFolder, loadJsonl, pull, push } from '../../data/index.js';
import type { DocumentArray } from '../../data/index.js';
import { registerEmojiBuildCommand } from '../datasets/emoji/command.js';

type Print = (line: string) => void;

/** `--version N`: a positive integer. */
export function parseVersion(v: string): number {
  const n = Number(v.replace(/^v/i, ''));
  if (!Number.isInteger(n) || n < 1) throw new ConfigError('--version', `must be a positive integer (1, 2, …), got ${JSON.stringify(v)}`);
  return n;
}

/** `NAME` or `NAME@vN`; a version in the name and --version must agree. */
function nameAndVersion(spec: string, flag: number | undefined): { name: string; version: number | undefined } {
  const m = /^(.+)@v(\d+)$/.exec(spec);
  if (!m) return { name: spec, version: flag };
  const v = parseVersion(m[2]!);
  if (flag !== undefined && flag !== v) throw new ConfigError('--version', `${flag} differs from the version in ${spec}`);
  return { name: m[1]!, version: v };
}

/** Documents of a CSV/TSV, JSONL file or caption folder, and how many bad rows were skipped. */
export async function loadDataFile(spec: string, skipBadRows = false): Promise<{ docs: DocumentArray; skipped: number }> {
  if (!existsSync(spec)) throw new ConfigError('--data', `no such file or folder: ${spec}`);
  const r = statSync(spec).isDirectory() ? await loadFolder(spec, { skipBadRows }) : /\.jsonl?$/i.test(spec) ? await loadJsonl(spec, { skipBadRows }) : await loadCsv(spec, { skipBadRows });
  return { docs: r.docs, skipped: r.stats.skipped.length };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** Rows as columns padded to their widest cell, separated by two spaces. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd());
}

export function registerDataCommands(program: Command, print: Print): void {
  const ds = program
    .command('datasets')
    .description('Named, versioned datasets in the local store ($CLIPFIT_HOME/datasets), used as dataset:NAME[@vN]');

  ds.command('push <name>')
    .description('Store a CSV/TSV, JSONL file or image folder (images copied in) as the next version of NAME')
    .requiredOption('--data <path>', 'a CSV/TSV file, a JSONL file or a folder of images with .txt captions')
    .option('--skip-bad-rows', 'skip (and count) bad rows instead of failing')
    .option('--json', 'print the stored version as JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit datasets push shoes --data shoes.csv\n  $ clipfit fit --train-data dataset:shoes ...')
    .action(async (name: string, o: { data: string; skipBadRows?: boolean; json?: boolean }) => {
      const { docs, skipped } = await loadDataFile(o.data, o.skipBadRows);
      const r = await push(name, docs);
      if (o.json) return print(JSON.stringify({ name: r.name, version: r.version, created: r.created, skipped, dir: r.dir, meta: r.meta }, null, 2));
      if (skipped) print(`skipped ${skipped} bad row(s) of ${o.data}`);
      const what = `${r.meta.count} documents, ${r.meta.images} images (${formatBytes(r.meta.bytes)})`;
      print(r.created ? `pushed dataset ${r.name} v${r.version}: ${what}` : `dataset ${r.name} v${r.version} already holds this content (${what}); nothing written`);
    });

  ds.command('pull <name>')
    .description('Write a version of NAME (default: the latest) as a JSONL file of Documents')
    .option('--version <n>', 'the version (default: the latest); NAME@vN works too', parseVersion)
    .requiredOption('--out <file.jsonl>', 'output JSONL file; image uris point into the store')
    .addHelpText('after', '\nExamples:\n  $ clipfit datasets pull shoes --out shoes.jsonl\n  $ clipfit datasets pull shoes --version 2 --out shoes-v2.jsonl')
    .action(async (spec: string, o: { version?: number; out: string }) => {
      const { name, version } = nameAndVersion(spec, o.version);
      const meta = await datasetInfo(name, { version });
      const docs = await pull(name, { version: meta.version });
      const text = docs.map((d) => JSON.stringify(d.toJSON()) + '\n').join('');
      await fsp.mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
      const tmp = `${o.out}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, text);
      await fsp.rename(tmp, o.out);
      print(`wrote ${o.out}: ${docs.length} documents of dataset ${name} v${meta.version}`);
    });

  ds.command('list')
    .description('List the datasets in the store with their versions')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit datasets list\n  $ clipfit datasets list --json')
    .action(async (o: { json?: boolean }) => {
      const all = await listDatasets();
      if (o.json) return print(JSON.stringify(all, null, 2));
      if (!all.length) return print(`no datasets in ${datasetsRoot()}`);
      const rows = [['NAME', 'VERSIONS', 'LATEST', 'DOCS', 'IMAGES', 'SIZE', 'CREATED']];
      for (const d of all)
        rows.push([d.name, d.versions.map((v) => `v${v}`).join(','), `v${d.latest.version}`, String(d.latest.count), String(d.latest.images), formatBytes(d.latest.bytes), d.latest.created.replace('T', ' ').slice(0, 19)]);
      for (const line of table(rows)) print(line);
    });

  ds.command('delete <name>')
    .description('Delete one version of NAME, or (without --version) all of it')
    .option('--version <n>', 'delete only this version; NAME@vN works too', parseVersion)
    .addHelpText('after', '\nExamples:\n  $ clipfit datasets delete shoes@v1\n  $ clipfit datasets delete shoes')
    .action(async (spec: string, o: { version?: number }) => {
      const { name, version } = nameAndVersion(spec, o.version);
      await deleteDataset(name, version);
      print(version === undefined ? `deleted dataset ${name}` : `deleted dataset ${name} v${version}`);
    });

  registerEmojiBuildCommand(ds, print);
}
