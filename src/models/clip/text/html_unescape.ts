// Two HTML-unescaping rules that OpenAI's CLIP text cleaning runs one after the other:
// * ftfy's `unescape_html` (inside fix_text): only `&name;` / `&#…;` forms that end in ';', plus
//   upper-cased names of lower-case entities (&NTILDE; → Ñ) where that is unambiguous;
// * Python's `html.unescape` (applied twice afterwards): the HTML5 rules, including the legacy
//   names without ';' and the longest-prefix match (`&notanentity;` → `¬anentity;`).

import { HTML5_ENTITIES } from './html_entities.js';

// Numeric references that HTML5 maps somewhere else (Python's html._invalid_charrefs): NUL → U+FFFD,
// CR kept, and 0x80..0x9F read as Windows-1252 (the five bytes it leaves undefined stay as they are).
const CP1252_C1 = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';
function invalidCharref(num: number): string | undefined {
  if (num === 0x00) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252_C1[num - 0x80];
  return undefined;
}

// Code points that a numeric reference deletes (Python's html._invalid_codepoints).
function isInvalidCodepoint(num: number): boolean {
  return (
    (num >= 0x1 && num <= 0x8) ||
    num === 0xb ||
    (num >= 0xe && num <= 0x1f) ||
    (num >= 0x7f && num <= 0x9f) ||
    (num >= 0xfdd0 && num <= 0xfdef) ||
    (num <= 0x10ffff && (num & 0xfffe) === 0xfffe)
  );
}

function numericCharref(digits: string, hex: boolean): string {
  // Python parses arbitrarily long numbers; anything past 0x10FFFF becomes U+FFFD either way.
  const trimmed = digits.replace(/^0+(?=.)/, '');
  const num = trimmed.length > 12 ? Infinity : parseInt(trimmed, hex ? 16 : 10);
  const mapped = invalidCharref(num);
  if (mapped !== undefined) return mapped;
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  if (isInvalidCodepoint(num)) return '';
  return String.fromCodePoint(num);
}

const CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function replaceCharref(_m: string, ref: string): string {
  if (ref[0] === '#') {
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    return numericCharref(digits, hex);
  }
  const whole = HTML5_ENTITIES.get(ref);
  if (whole !== undefined) return whole;
  // Longest prefix (at least 2 code units, as Python slices the str) that is an entity name.
  for (let x = ref.length - 1; x > 1; x--) {
    const hit = HTML5_ENTITIES.get(ref.slice(0, x));
    if (hit !== undefined) return hit + ref.slice(x);
  }
  return '&' + ref;
}

/** Python 3.11 `html.unescape`. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF_RE, replaceCharref);
}

// ftfy's extra table: `&NAME;` for every all-lower-case `name;` whose upper-case form Python's
// html.unescape would leave alone, decoding to the upper-cased character.
const FTFY_ENTITIES: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>();
  for (const [name, value] of HTML5_ENTITIES) {
    if (!name.endsWith(';')) continue;
    m.set(`&${name}`, value);
  }
  for (const [name, value] of HTML5_ENTITIES) {
    if (!name.endsWith(';') || name !== name.toLowerCase()) continue;
    const upper = `&${name.toUpperCase()}`;
    if (htmlUnescape(upper) === upper) m.set(upper, value.toUpperCase());
  }
  return m;
})();

const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy.fixes.unescape_html: decode only unambiguous entities, i.e. those closed by ';'. */
export function ftfyUnescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(FTFY_ENTITY_RE, (ent) => {
    const known = FTFY_ENTITIES.get(ent);
    if (known !== undefined) return known;
    if (ent.startsWith('&#')) {
      const decoded = htmlUnescape(ent);
      return decoded.includes(';') ? ent : decoded;
    }
    return ent;
  });
}
