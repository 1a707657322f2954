// Codepoint sequences as the packages spell them ("1F44D-1F3FD", "0023-FE0F-20E3", "1f600.png"), and
// the two keys built from them.
//
// Join code: the sequence upper-cased with FE0F (variation selector 16, "show as emoji") removed. The
// packages disagree on where they write FE0F (emoji-datasource "2764-FE0F", emojibase "2764",
// OpenMoji either), so the join ignores it.
//
// Group key: the join code with the skin tones 1F3FB–1F3FF, the gender signs 2640/2642 and ZWJ 200D
// removed, and man 1F468 / woman 1F469 mapped to person 1F9D1. "cook", "man cook", "woman cook" and
// their 15 skin-tone forms all become 1F9D1-1F373: one item, so near-duplicates never straddle a
// split. A sequence made only of those codepoints (♀ ♂ on their own) keeps its join code.
//
// Item key: the join code of the group's representative (its neutral, untoned member), lower-cased:
// "1f600", "1f9d1-200d-1f373", "0023-20e3". It is a real emoji sequence (ZWJ kept), names the item's
// image files (images/<style>/<key>.png) and is its label in every CSV/JSONL the builder writes.

const SKIN_TONES = new Set(['1F3FB', '1F3FC', '1F3FD', '1F3FE', '1F3FF']);
const GENDER_SIGNS = new Set(['2640', '2642']);
const ZWJ = '200D';
const VS16 = 'FE0F';
const PERSON = '1F9D1';
const MAN_WOMAN = new Set(['1F468', '1F469']);

function parts(hex: string): string[] {
  return hex
    .trim()
    .replace(/\.(png|svg)$/i, '')
    .toUpperCase()
    .split(/[-_\s]+/)
    .filter((c) => c !== '');
}

/** Upper-case, FE0F removed: "2764-fe0f-200d-1f525" → "2764-200D-1F525". */
export function joinCode(hex: string): string {
  return parts(hex)
    .filter((c) => c !== VS16)
    .join('-');
}

/** The key that skin-tone and gender variants share (see the header). */
export function groupKey(hex: string): string {
  const code = joinCode(hex).split('-');
  const kept = code.filter((c) => !SKIN_TONES.has(c) && !GENDER_SIGNS.has(c) && c !== ZWJ).map((c) => (MAN_WOMAN.has(c) ? PERSON : c));
  return kept.length ? kept.join('-') : code.join('-');
}

/** The item key of a representative: its join code, lower-cased. */
export const itemKey = (hex: string): string => joinCode(hex).toLowerCase();

/** The characters of a codepoint sequence ("1F44D-1F3FD" → "👍🏽"). */
export function emojiChars(hex: string): string {
  return String.fromCodePoint(...parts(hex).map((c) => Number.parseInt(c, 16)));
}

/** How neutral a member is, lower first: an exact match of its group key without ZWJ (the plain
 * form), then fewer gender or man/woman codepoints. Picks "cook" over "man cook", and "person
 * gesturing OK" over "woman gesturing OK". */
export function neutrality(hex: string): number {
  const code = joinCode(hex).split('-');
  const plain = code.filter((c) => c !== ZWJ).join('-');
  const gendered = code.filter((c) => GENDER_SIGNS.has(c) || MAN_WOMAN.has(c) || SKIN_TONES.has(c)).length;
  return (plain === groupKey(hex) ? 0 : 100) + gendered;
}
