// Icon sets in Iconify's JSON format (`@iconify-json/<prefix>` npm packages: icons.json with SVG
// bodies, info.json with the licence), turned into image–caption pairs for pretraining the base CLIP.
//
// Caption = the icon's name as words ("arrow-left-bold" → "arrow left"), with the style words that
// only tell one drawing of a concept from another (outline, fill, bold, duotone, …) and numbering
// removed: the same concept drawn in several sets and weights then shares a caption, which the CSV
// loader turns into one label, so CLIPLoss treats those drawings as positives of each other.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DatasetError } from '../../../errors.js';

/**
 * The sets the shipped base model learns from: general-purpose UI, object and game icon sets with
 * permissive licences, several drawings of the same everyday concepts. No emoji set (Noto, Twemoji,
 * OpenMoji, Fluent Emoji, …) is used, so the emoji benchmark stays unseen.
 */
export const BASE_ICON_SETS = [
  'mdi', 'tabler', 'lucide', 'ph', 'carbon', 'game-icons', 'bi', 'ri', 'iconoir', 'healthicons',
  'fa6-solid', 'flat-color-icons', 'mingcute', 'icon-park-outline',
] as const;

export interface IconSetInfo {
  prefix: string;
  name: string;
  author: string;
  authorUrl?: string;
  license: string;
  licenseUrl?: string;
  version: string;
}

export interface Icon {
  prefix: string;
  name: string;
  /** A complete SVG document drawing the icon, `currentColor` still unresolved. */
  svg: string;
}

interface IconifyJson {
  prefix: string;
  icons: Record<string, { body: string; width?: number; height?: number; left?: number; top?: number; hFlip?: boolean; vFlip?: boolean; rotate?: number; hidden?: boolean }>;
  width?: number;
  height?: number;
  left?: number;
  top?: number;
}

/** Words that name a drawing style rather than the thing drawn. */
const STYLE_WORDS = new Set([
  'outline', 'outlined', 'fill', 'filled', 'line', 'bold', 'duotone', 'thin', 'light', 'regular', 'solid',
  'sharp', 'round', 'rounded', 'twotone', 'two', 'tone', 'variant', 'alt', 'o', 'sm', 'lg', 'small', 'large',
]);

/** "arrow-left-bold" → "arrow left"; "abstract-001" → "abstract"; "" when nothing is left. */
export function captionOfIconName(name: string): string {
  const words = name
    .toLowerCase()
    .split(/[-_:\s]+/)
    .filter((w) => w && !/^\d+$/.test(w) && !STYLE_WORDS.has(w));
  return words.join(' ');
}

function packageDir(prefix: string, from: string): string {
  const req = createRequire(path.join(from, 'package.json'));
  const pkg = `@iconify-json/${prefix}`;
  try {
    return path.dirname(req.resolve(`${pkg}/package.json`));
  } catch {
    throw new DatasetError(pkg, `icon set '${prefix}' is not installed: run \`npm install --save-dev ${pkg}\``);
  }
}

/** The set's licence and credit, from its info.json. */
export function readIconSetInfo(prefix: string, from = process.cwd()): IconSetInfo {
  const dir = packageDir(prefix, from);
  const info = JSON.parse(readFileSync(path.join(dir, 'info.json'), 'utf8')) as {
    name: string; author: { name: string; url?: string }; license: { spdx?: string; title: string; url?: string };
  };
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  return {
    prefix,
    name: info.name,
    author: info.author.name,
    ...(info.author.url ? { authorUrl: info.author.url } : {}),
    license: info.license.spdx ?? info.license.title,
    ...(info.license.url ? { licenseUrl: info.license.url } : {}),
    version: pkg.version,
  };
}

/**
 * Every icon of a set as an SVG document (aliases, hidden icons and transformed icons, which repeat
 * another icon, are left out).
 */
export function readIconSet(prefix: string, from = process.cwd()): Icon[] {
  const file = path.join(packageDir(prefix, from), 'icons.json');
  if (!existsSync(file)) throw new DatasetError(`@iconify-json/${prefix}`, `${file} is missing`);
  const json = JSON.parse(readFileSync(file, 'utf8')) as IconifyJson;
  const out: Icon[] = [];
  for (const [name, icon] of Object.entries(json.icons)) {
    if (icon.hidden || icon.hFlip || icon.vFlip || icon.rotate) continue;
    const w = icon.width ?? json.width ?? 16;
    const h = icon.height ?? json.height ?? 16;
    const left = icon.left ?? json.left ?? 0;
    const top = icon.top ?? json.top ?? 0;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="${left} ${top} ${w} ${h}" width="${w}" height="${h}">${icon.body}</svg>`;
    out.push({ prefix, name, svg });
  }
  return out;
}
