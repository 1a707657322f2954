// The base model's pretraining corpus: every icon of BASE_ICON_SETS rasterised to a small PNG on
// white, captioned by its name, split by caption into train and held-out (so held-out concepts are
// unseen words and drawings), written as Finetuner CSVs (text,image). Rasterised images are kept
// across runs, so an interrupted build resumes where it stopped.

import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { csvField } from '../emoji/writers.js';
import { BASE_ICON_SETS, captionOfIconName, readIconSet, readIconSetInfo } from './iconify.js';
import type { IconSetInfo } from './iconify.js';

export interface IconCorpusOptions {
  out: string;
  /** Side of the square PNGs (default 64, the emoji packages' size). */
  size?: number;
  sets?: readonly string[];
  /** Percentage of captions held out for zero-shot evaluation (default 3). */
  heldOutPercent?: number;
  /** Where to resolve the @iconify-json packages from (default the working directory). */
  from?: string;
  onProgress?(done: number, total: number): void;
}

export interface IconCorpus {
  out: string;
  train: string;
  heldOut: string;
  pairs: { train: number; heldOut: number };
  captions: { train: number; heldOut: number };
  skipped: { noCaption: number; renderFailed: string[] };
  sets: (IconSetInfo & { icons: number })[];
}

/**
 * `currentColor` becomes one of these, chosen by a hash of the icon, so colour never predicts the
 * caption and the model sees coloured shapes as the emoji it will meet are coloured.
 */
const PALETTE = ['#000000', '#37474f', '#c62828', '#ef6c00', '#f9a825', '#2e7d32', '#1565c0', '#6a1b9a', '#5d4037', '#00838f'];

function hash32(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0);
}

/** Held-out by caption: every drawing of a held-out concept is held out. */
export function isHeldOut(caption: string, percent: number): boolean {
  return hash32(`heldout:${caption}`) % 100 < percent;
}

/** A square, padded viewBox around the icon's own, so wide icons are not stretched. */
function squareSvg(svg: string, colour: string): string {
  const m = /viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"/.exec(svg);
  let out = svg.replaceAll('currentColor', colour);
  if (m) {
    let [x, y, w, h] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
    const side = Math.max(w, h) * 1.125;
    x -= (side - w) / 2;
    y -= (side - h) / 2;
    w = h = side;
    out = out.replace(m[0], `viewBox="${x} ${y} ${w} ${h}"`).replace(/ width="[\d.]+" height="[\d.]+"/, ` width="${w}" height="${h}"`);
  }
  return out;
}

export function rasteriseSvg(svg: string, size: number): Uint8Array {
  const r = new Resvg(svg, { fitTo: { mode: 'width', value: size }, background: '#ffffff', font: { loadSystemFonts: false } });
  return r.render().asPng();
}


export async function buildIconCorpus(opts: IconCorpusOptions): Promise<IconCorpus> {
  const size = opts.size ?? 64;
  const percent = opts.heldOutPercent ?? 3;
  const sets = opts.sets ?? BASE_ICON_SETS;
  const from = opts.from ?? process.cwd();
  const out = path.resolve(opts.out);
  const infos = sets.map((s) => readIconSetInfo(s, from));
  const icons = sets.flatMap((s) => readIconSet(s, from));
  const rows = { train: [] as string[], heldOut: [] as string[] };
  const captions = { train: new Set<string>(), heldOut: new Set<string>() };
  const skipped = { noCaption: 0, renderFailed: [] as string[] };
  const perSet = new Map<string, number>();
  let done = 0;
  for (const icon of icons) {
    done++;
    if (done % 500 === 0) opts.onProgress?.(done, icons.length);
    const caption = captionOfIconName(icon.name);
    if (!caption) {
      skipped.noCaption++;
      continue;
    }
    const file = path.join(out, 'images', icon.prefix, `${icon.name}.png`);
    if (!existsSync(file)) {
      let png: Uint8Array;
      try {
        png = rasteriseSvg(squareSvg(icon.svg, PALETTE[hash32(`${icon.prefix}:${icon.name}`) % PALETTE.length]!), size);
      } catch {
        skipped.renderFailed.push(`${icon.prefix}:${icon.name}`);
        continue;
      }
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await fsp.writeFile(`${file}.tmp`, png);
      await fsp.rename(`${file}.tmp`, file);
    }
    const split = isHeldOut(caption, percent) ? 'heldOut' : 'train';
    rows[split].push(`${csvField(caption)},${csvField(path.relative(out, file))}`);
    captions[split].add(caption);
    perSet.set(icon.prefix, (perSet.get(icon.prefix) ?? 0) + 1);
  }
  opts.onProgress?.(icons.length, icons.length);
  const train = path.join(out, 'train.csv');
  const heldOut = path.join(out, 'heldout.csv');
  await fsp.writeFile(train, `text,image\n${rows.train.join('\n')}\n`);
  await fsp.writeFile(heldOut, `text,image\n${rows.heldOut.join('\n')}\n`);
  const corpus: IconCorpus = {
    out,
    train,
    heldOut,
    pairs: { train: rows.train.length, heldOut: rows.heldOut.length },
    captions: { train: captions.train.size, heldOut: captions.heldOut.size },
    skipped,
    sets: infos.map((i) => ({ ...i, icons: perSet.get(i.prefix) ?? 0 })),
  };
  await fsp.writeFile(path.join(out, 'corpus.json'), JSON.stringify(corpus, null, 1));
  return corpus;
}

/** Markdown credits for every set, as the CC-BY licences ask. */
export function iconAttribution(sets: readonly (IconSetInfo & { icons?: number })[]): string {
  const lines = sets.map(
    (s) => `- **${s.name}** (\`@iconify-json/${s.prefix}@${s.version}\`${s.icons !== undefined ? `, ${s.icons} icons` : ''}) by ${s.authorUrl ? `[${s.author}](${s.authorUrl})` : s.author}, licence ${s.licenseUrl ? `[${s.license}](${s.licenseUrl})` : s.license}.`,
  );
  return `${lines.join('\n')}\n`;
}
