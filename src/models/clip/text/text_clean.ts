// The text cleaning of OpenAI CLIP's SimpleTokenizer, character for character:
//   basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
//   whitespace_clean(t) = re.sub(r'\s+', ' ', t).strip()
//   cleaned             = whitespace_clean(basic_clean(t)).lower()
// with ftfy 6.3.1's fix_text at its defaults. Python's whitespace sets differ from JavaScript's
// `\s` and `trim()` (no U+FEFF; `str.strip` also strips U+001C..U+001F and U+0085), so they are
// spelled out here.

import { ftfyUnescapeHtml, htmlUnescape } from './html_unescape.js';
import { fixC1Controls, fixEncoding } from './mojibake.js';

/** Python `regex` module's `\s` (Unicode White_Space). */
export const PY_REGEX_WS = '\\t\\n\\x0b\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Python `str.isspace()` / `str.strip()`: White_Space plus the information separators U+001C..U+001F. */
const PY_STRIP_WS = `${PY_REGEX_WS}\\x1c-\\x1f`;

const WS_RUN_RE = new RegExp(`[${PY_REGEX_WS}]+`, 'g');
const STRIP_RE = new RegExp(`^[${PY_STRIP_WS}]+|[${PY_STRIP_WS}]+$`, 'g');

/** Python `str.strip()` with no argument. */
export function pyStrip(s: string): string {
  return s.replace(STRIP_RE, '');
}

// ---- the individual ftfy fixers (ftfy.fixes) ----

// Latin ligatures and legacy digraphs that ftfy takes apart (chardata.LIGATURES).
const LIGATURES: ReadonlyMap<string, string> = new Map([
  ['Ĳ', 'IJ'], ['ĳ', 'ij'], ['ŉ', 'ʼn'],
  ['Ǳ', 'DZ'], ['ǲ', 'Dz'], ['ǳ', 'dz'], ['Ǆ', 'DŽ'], ['ǅ', 'Dž'], ['ǆ', 'dž'],
  ['Ǉ', 'LJ'], ['ǈ', 'Lj'], ['ǉ', 'lj'], ['Ǌ', 'NJ'], ['ǋ', 'Nj'], ['ǌ', 'nj'],
  ['ﬀ', 'ff'], ['ﬁ', 'fi'], ['ﬂ', 'fl'], ['ﬃ', 'ffi'], ['ﬄ', 'ffl'], ['ﬅ', 'ſt'], ['ﬆ', 'st'],
]);
const LIGATURE_RE = new RegExp(`[${[...LIGATURES.keys()].join('')}]`, 'g');

// Full-width and half-width forms U+FF01..U+FFEF → their NFKC form, plus U+3000 → space
// (chardata.WIDTH_MAP).
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
function widthFix(c: string): string {
  return c === '\u3000' ? ' ' : c.normalize('NFKC');
}

// ANSI terminal escapes; Python's `\d` here is any Unicode decimal digit.
const ANSI_RE = /\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu;

// Control characters with no visible effect (chardata.CONTROL_CHARS).
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

// Lone UTF-16 surrogates become U+FFFD (a well-formed pair is already one code point in JS).
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function fixLineBreaks(t: string): string {
  return t.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\x85]/g, '\n');
}

function uncurlQuotes(t: string): string {
  return t.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
}

/** ftfy.fix_and_explain on one segment: apply every fixer in ftfy's order until nothing changes. */
function fixSegment(text: string, unescape: boolean): string {
  for (;;) {
    const orig = text;
    if (unescape) text = ftfyUnescapeHtml(text);
    text = fixEncoding(text);
    text = fixC1Controls(text);
    text = text.replace(LIGATURE_RE, (c) => LIGATURES.get(c)!);
    text = text.replace(WIDTH_RE, widthFix);
    text = uncurlQuotes(text);
    text = fixLineBreaks(text);
    text = text.replace(LONE_SURROGATE_RE, '\ufffd');
    text = text.replace(ANSI_RE, '');
    text = text.replace(CONTROL_RE, '');
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

/**
 * ftfy.fix_text with default settings (6.3.1): fixes each line (segment ending in '\n') on its own;
 * HTML entities are decoded until the first segment that contains '<', and never after it.
 */
export function fixText(text: string): string {
  // Printable ASCII without '&' is a fixed point of every fixer.
  if (/^[\x20-\x25\x27-\x7e]*$/.test(text)) return text;
  let unescape = true;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    let brk = text.indexOf('\n', pos) + 1;
    if (brk === 0) brk = text.length;
    const segment = text.slice(pos, brk);
    if (unescape && segment.includes('<')) unescape = false;
    out += fixSegment(segment, unescape);
    pos = brk;
  }
  return out;
}

/** SimpleTokenizer's basic_clean. */
export function basicClean(text: string): string {
  return pyStrip(htmlUnescape(htmlUnescape(fixText(text))));
}

/** SimpleTokenizer's whitespace_clean. */
export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(WS_RUN_RE, ' '));
}

/** The exact string CLIP splits into pre-tokens: whitespace_clean(basic_clean(text)).lower(). */
export function cleanCaption(text: string): string {
  return whitespaceClean(basicClean(text)).toLowerCase();
}
