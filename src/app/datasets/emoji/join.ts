// The join of the four packages into items: one item per group of base emoji (codepoints.ts), with
// its English label and tags (emojibase-data en), and the source file of its representative in each
// style (emoji-datasource-google / -twitter 64×64 PNGs, OpenMoji colour SVGs).
//
// Base emoji: the entries of emoji-datasource's emoji.json (skin tones are nested in them as
// `skin_variations`), less the Component category (the five skin-tone swatches; hair components
// are not in emoji-datasource 16). An entry is kept when emojibase has an English label for it and
// at least one requested style has an image of it; a representative without an image in a style is
// counted as missing there (build.ts), never silently replaced by another member.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { emojiChars, groupKey, itemKey, joinCode, neutrality } from './codepoints.js';
import { EMOJI_STYLES, packageFile, readJson } from './packages.js';
import type { EmojiPackageDirs, EmojiStyle } from './packages.js';

export interface EmojiItem {
  /** The representative's join code, lower-cased (codepoints.ts): "1f600", "1f9d1-200d-1f373". */
  key: string;
  /** Shared by all members: "1F9D1-1F373". */
  groupKey: string;
  /** The representative's characters. */
  emoji: string;
  /** English CLDR label of the representative (emojibase-data en): the caption and the query. */
  label: string;
  tags: string[];
  /** emojibase's sort order of the representative. */
  order: number;
  /** emoji-datasource's category ("Smileys & Emotion", "Flags", …). */
  category: string;
  /** Join codes of the base emoji in the group, representative first. */
  members: string[];
  /** Every join code of the group: members and their skin-tone forms, sorted. */
  variants: string[];
  /** The representative's source file per style (absolute); absent where the style has none. */
  sources: Partial<Record<EmojiStyle, string>>;
}

export interface EmojiJoinStats {
  /** Base emoji in emoji-datasource (components excluded). */
  baseEmoji: number;
  /** Of those, with an image in all three styles (google, twitter, openmoji). */
  baseInAllStyles: number;
  /** Flags among baseInAllStyles. */
  flagsInAllStyles: number;
  /** Base emoji without an English emojibase label (left out), as join codes. */
  unlabelled: string[];
  /** Base emoji left out because no requested style has an image of them. */
  noImage: string[];
  /** Items (groups). */
  items: number;
}

export interface EmojiJoin {
  items: EmojiItem[];
  stats: EmojiJoinStats;
}

interface DatasourceEntry {
  unified: string;
  image: string;
  category?: string;
  sort_order?: number;
  has_img_google?: boolean;
  has_img_twitter?: boolean;
  skin_variations?: Record<string, { unified: string; image: string }>;
}
interface OpenmojiEntry {
  hexcode: string;
}
interface EmojibaseEntry {
  hexcode: string;
  label?: string;
  tags?: string[];
  order?: number;
}

/** Labels of one emojibase locale by join code (top-level entries only; skins carry toned labels). */
export async function emojibaseLabels(dirs: EmojiPackageDirs, locale: string): Promise<Map<string, { label: string; tags: string[] }>> {
  const rows = await readJson<EmojibaseEntry[]>(packageFile('labels', dirs, locale, 'data.json'));
  const out = new Map<string, { label: string; tags: string[] }>();
  for (const e of rows) if (e.label) out.set(joinCode(e.hexcode), { label: e.label, tags: e.tags ?? [] });
  return out;
}

/** Join the packages into items, sorted by emojibase order. `styles` (default all) decides which
 * images make an emoji eligible; sources are looked up for every style either way. */
export async function joinEmoji(dirs: EmojiPackageDirs, styles: readonly EmojiStyle[] = EMOJI_STYLES): Promise<EmojiJoin> {
  const google = await readJson<DatasourceEntry[]>(packageFile('google', dirs, 'emoji.json'));
  const twitter = await readJson<DatasourceEntry[]>(packageFile('twitter', dirs, 'emoji.json'));
  const openmoji = await readJson<OpenmojiEntry[]>(packageFile('openmoji', dirs, 'data', 'openmoji.json'));
  const en = await readJson<EmojibaseEntry[]>(packageFile('labels', dirs, 'en', 'data.json'));
  const googleDir = packageFile('google', dirs, 'img', 'google', '64');
  const twitterDir = packageFile('twitter', dirs, 'img', 'twitter', '64');
  const svgDir = packageFile('openmoji', dirs, 'color', 'svg');

  const png = (dir: string, e: DatasourceEntry | undefined, flag: 'has_img_google' | 'has_img_twitter'): string | undefined => {
    if (!e || e[flag] === false) return undefined;
    const f = path.join(dir, e.image);
    return existsSync(f) ? f : undefined;
  };
  const byCode = <T>(rows: T[], hex: (r: T) => string): Map<string, T> => new Map(rows.map((r) => [joinCode(hex(r)), r]));
  const gMap = byCode(google, (e) => e.unified);
  const tMap = byCode(twitter, (e) => e.unified);
  const oMap = byCode(openmoji, (e) => e.hexcode);
  const enMap = byCode(en, (e) => e.hexcode);

  // Base emoji, in the union of both emoji-datasource lists.
  const codes = [...new Set([...gMap.keys(), ...tMap.keys()])];
  type Base = { code: string; entry: DatasourceEntry; label: EmojibaseEntry; sources: Partial<Record<EmojiStyle, string>> };
  const bases: Base[] = [];
  const stats: EmojiJoinStats = { baseEmoji: 0, baseInAllStyles: 0, flagsInAllStyles: 0, unlabelled: [], noImage: [], items: 0 };
  for (const code of codes) {
    const entry = (gMap.get(code) ?? tMap.get(code))!;
    if (entry.category === 'Component') continue;
    stats.baseEmoji++;
    const sources: Partial<Record<EmojiStyle, string>> = {};
    const g = png(googleDir, gMap.get(code), 'has_img_google');
    const t = png(twitterDir, tMap.get(code), 'has_img_twitter');
    const om = oMap.get(code);
    const svg = om ? path.join(svgDir, `${om.hexcode}.svg`) : undefined;
    if (g) sources.google = g;
    if (t) sources.twitter = t;
    if (svg && existsSync(svg)) sources.openmoji = svg;
    if (EMOJI_STYLES.every((s) => sources[s])) {
      stats.baseInAllStyles++;
      if (entry.category === 'Flags') stats.flagsInAllStyles++;
    }
    const label = enMap.get(code);
    if (!label?.label) {
      stats.unlabelled.push(code);
      continue;
    }
    if (!styles.some((s) => sources[s])) {
      stats.noImage.push(code);
      continue;
    }
    bases.push({ code, entry, label, sources });
  }

  const groups = new Map<string, Base[]>();
  for (const b of bases) {
    const k = groupKey(b.code);
    const list = groups.get(k);
    if (list) list.push(b);
    else groups.set(k, [b]);
  }
  const orderOf = (b: Base): number => b.label.order ?? 100_000 + (b.entry.sort_order ?? 0);
  const items: EmojiItem[] = [];
  for (const [gk, members] of groups) {
    members.sort((a, b) => neutrality(a.code) - neutrality(b.code) || orderOf(a) - orderOf(b) || (a.code < b.code ? -1 : 1));
    const rep = members[0]!;
    const variants = new Set<string>();
    for (const m of members) {
      variants.add(m.code);
      for (const v of Object.values(m.entry.skin_variations ?? {})) variants.add(joinCode(v.unified));
    }
    items.push({
      key: itemKey(rep.code),
      groupKey: gk,
      emoji: emojiChars(rep.code),
      label: rep.label.label!,
      tags: rep.label.tags ?? [],
      order: orderOf(rep),
      category: rep.entry.category ?? '',
      members: members.map((m) => m.code),
      variants: [...variants].sort(),
      sources: rep.sources,
    });
  }
  items.sort((a, b) => a.order - b.order || (a.key < b.key ? -1 : 1));
  stats.items = items.length;
  return { items, stats };
}

/** The item a codepoint sequence (any member or skin-tone form, with or without FE0F) belongs to. */
export function findItem(items: readonly EmojiItem[], hex: string): EmojiItem | undefined {
  const gk = groupKey(hex);
  return items.find((it) => it.groupKey === gk);
}
