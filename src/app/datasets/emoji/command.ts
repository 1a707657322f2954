// `clipfit datasets build emoji --out DIR [--size 64] [--limit N] [--push] [--name-prefix emoji]`.

import type { Command } from 'commander';
import { ConfigError } from '../../../errors.js';
import { buildEmojiDataset } from './build.js';
import type { EmojiBuildProgress } from './build.js';
import { pushEmojiDataset } from './push.js';

type Print = (line: string) => void;

const positiveInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(flag, `must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

interface EmojiBuildFlags {
  out: string;
  size?: number;
  limit?: number;
  locales?: string;
  push?: boolean;
  namePrefix: string;
  json?: boolean;
}

/** Adds `build emoji` under `parent` (the `datasets` command). */
export function registerEmojiBuildCommand(parent: Command, print: Print): void {
  const build = parent.command('build').description('Build a dataset from packages installed with clipfit (no download)');
  build
    .command('emoji')
    .description('Emoji retrieval data: Google + Twemoji images to train on, OpenMoji as a style shift, CLDR labels as captions and queries')
    .requiredOption('--out <dir>', 'output folder (keep it outside the repository or gitignored)')
    .option('--size <px>', 'image side in pixels', positiveInt('--size'), 64)
    .option('--limit <n>', 'only the first N items in emojibase order', positiveInt('--limit'))
    .option('--locales <list>', 'comma-separated locales for cross-lingual query sets', 'de,fr,es,ja,zh')
    .option('--push', 'push the sets to the dataset store as <prefix>-train, <prefix>-eval-in-domain, …')
    .option('--name-prefix <prefix>', 'dataset name prefix for --push', 'emoji')
    .option('--json', 'print the counts as JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit datasets build emoji --out ~/data/emoji\n  $ clipfit datasets build emoji --out ~/data/emoji --size 224 --push')
    .action(async (o: EmojiBuildFlags) => {
      let lastPct = -1;
      const onProgress = (p: EmojiBuildProgress): void => {
        if (o.json || p.phase !== 'images' || !process.stderr.isTTY) return;
        const pct = Math.floor((100 * p.done) / p.total);
        if (pct !== lastPct) process.stderr.write(`\rimages ${p.done}/${p.total} (${pct}%)${p.done === p.total ? '\n' : ''}`);
        lastPct = pct;
      };
      const locales = (o.locales ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      const m = await buildEmojiDataset({ out: o.out, size: o.size, limit: o.limit, locales, onProgress });
      const pushed = o.push ? await pushEmojiDataset(o.out, m, { namePrefix: o.namePrefix }) : [];
      if (o.json) {
        return print(JSON.stringify({ out: o.out, counts: m.counts, missing: m.missing, build: m.build, pushed: pushed.map((r) => ({ name: r.name, version: r.version, created: r.created, count: r.meta.count })) }, null, 2));
      }
      const c = m.counts;
      print(`built ${o.out}: ${c.items} items (${c.train} train, ${c.eval} held out), ${m.size}×${m.size} px, in ${(m.build.ms / 1000).toFixed(1)} s (${m.build.written} images written, ${m.build.skipped} already there)`);
      print(`rows: train ${c.rows.train}, eval-in-domain ${c.rows['eval-in-domain']}, eval-shifted ${c.rows['eval-shifted']}`);
      print(`queries: ${Object.entries(c.queries).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      print(`missing images: ${Object.entries(m.missing).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      for (const r of pushed) print(r.created ? `pushed dataset ${r.name} v${r.version}: ${r.meta.count} documents` : `dataset ${r.name} v${r.version} already holds this content`);
      print(`licences and credits: ${o.out}/ATTRIBUTION.md`);
    });
}
