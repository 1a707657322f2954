// Mojibake repair, after ftfy 6.3.1's `fix_encoding`: text that was UTF-8, decoded by mistake with a
// single-byte code page (`cafÃ©`, `doesnâ€™t`), is encoded back with that code page and decoded as
// UTF-8. The steps and their order follow ftfy; the "is this text bad?" heuristic is our own, smaller
// one (ftfy's is a large hand-tuned regex): a text is bad when it holds C1 controls, or a run of
// characters whose Latin-1/Windows-1252 bytes form a complete UTF-8 sequence (plus the well-known
// Cyrillic/Greek/Baltic shapes). Because every repair must still decode as strict UTF-8, a looser
// test only risks changing text that already looks like mojibake.

import {
  CHARMAP_ENCODINGS,
  CHARMAPS,
  binaryToBytes,
  bytesToBinary,
  decodeCharmap,
  decodeUtf8Variants,
  encodeCharmap,
  decodeUtf8Strict,
} from './charmaps.js';

const C1_RE = /[\x80-\x9f]/;

// Character → byte under Latin-1 or sloppy Windows-1252 (the union: a char maps where either does).
const WESTERN_BYTE: ReadonlyMap<number, number> = (() => {
  const m = new Map<number, number>(CHARMAPS.get('sloppy-windows-1252')!.encode);
  for (let b = 0x80; b < 0x100; b++) if (!m.has(b)) m.set(b, b);
  m.delete(0xfffd);
  return m;
})();

// Symbols that commonly end a word, so a letter followed only by these at a word's end is read as
// plain text (`CAFÉ”`, `Brontë…”`), unless the letter is Â or Ã, which almost never end a word.
const END_SYMBOLS = new Set([...'’”»›™®©°…–—•´'].map((c) => c.codePointAt(0)!));
const MOJIBAKE_LEADS = new Set([...'ÂÃ'].map((c) => c.codePointAt(0)!));

/** Number of continuation bytes a UTF-8 lead byte needs, or 0 when it is not a multi-byte lead. */
function continuationCount(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 1;
  if (lead >= 0xe0 && lead <= 0xef) return 2;
  if (lead >= 0xf0 && lead <= 0xf4) return 3;
  return 0;
}

/** Second-byte limits that make a sequence well-formed UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF). */
function secondByteOk(lead: number, second: number): boolean {
  if (lead === 0xe0) return second >= 0xa0;
  if (lead === 0xed) return second <= 0x9f;
  if (lead === 0xf0) return second >= 0x90;
  if (lead === 0xf4) return second <= 0x8f;
  return true;
}

/**
 * Length in code points of the mojibake sequence starting at cps[i] (0 when none): a lead byte and
 * its continuation bytes, read through Latin-1/Windows-1252. A space stands for a lost U+00A0 after
 * Â/Ã when a lower-case letter or the start of text precedes, as ftfy's restore_byte_a0 assumes.
 */
function sequenceAt(cps: readonly number[], i: number): number {
  const lead = WESTERN_BYTE.get(cps[i]!);
  if (lead === undefined) return 0;
  const n = continuationCount(lead);
  if (n === 0 || i + n >= cps.length) return 0;
  for (let k = 1; k <= n; k++) {
    const cp = cps[i + k]!;
    let byte = WESTERN_BYTE.get(cp);
    if (cp === 0x20 && n === 1 && MOJIBAKE_LEADS.has(cps[i]!)) {
      const before = i === 0 ? '' : String.fromCodePoint(cps[i - 1]!);
      const before2 = i < 2 ? '' : String.fromCodePoint(cps[i - 2]!);
      if (i === 0 || /[a-z]/.test(before) || (/\s/.test(before) && /[a-z]/.test(before2))) byte = 0xa0;
    }
    if (byte === undefined || byte < 0x80 || byte > 0xbf) return 0;
    if (k === 1 && !secondByteOk(lead, byte)) return 0;
  }
  const allEndSymbols = cps.slice(i + 1, i + n + 1).every((cp) => END_SYMBOLS.has(cp));
  if (allEndSymbols && !MOJIBAKE_LEADS.has(cps[i]!)) {
    const next = cps[i + n + 1];
    if (next === undefined || !/[\p{L}\p{N}]/u.test(String.fromCodePoint(next))) return 0;
  }
  return n + 1;
}

// Shapes of UTF-8 Cyrillic read as Windows-1251 (`РџСЂРёРІРµС‚`), Greek as Windows-1253, and the
// U+2000 punctuation block under 1251/1253/1257 (`вЂ`, `β€`, `ā€`).
const CONT_1251 = decodeCharmap(Uint8Array.from({ length: 64 }, (_, k) => 0x80 + k), 'sloppy-windows-1251');
const CONT_1253 = decodeCharmap(Uint8Array.from({ length: 64 }, (_, k) => 0x80 + k), 'sloppy-windows-1253');
const escapeClass = (s: string) => s.replace(/[\\\]\[^-]/g, (c) => `\\${c}`);
const OTHER_PAGES_RE = new RegExp(
  `[РС][${escapeClass(CONT_1251)}][РС]|вЂ|[ΞΟ][${escapeClass(CONT_1253)}][ΞΟ]|β€|ā€`,
  'u',
);

/** Our stand-in for ftfy.badness.is_bad: does the text look like it holds mojibake? */
export function isBad(text: string): boolean {
  if (C1_RE.test(text)) return true;
  if (OTHER_PAGES_RE.test(text)) return true;
  const cps = [...text].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < cps.length; i++) if (sequenceAt(cps, i) > 0) return true;
  return false;
}

// ftfy's byte-level patterns (chardata.ALTERED_UTF8_RE, fixes.A_GRAVE_WORD_RE, chardata.LOSSY_UTF8_RE),
// run on binary strings (one char per byte).
const ALTERED_UTF8_RE =
  /[\xc2\xc3\xc5\xce\xd0\xd9] |[\xe2\xe3] [\x80-\x84\x86-\x9f\xa1-\xbf]|[\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf] |\xf0 [\x80-\xbf][\x80-\xbf]|\xf0[\x80-\xbf] [\x80-\xbf]|\xf0[\x80-\xbf][\x80-\xbf] /g;
const ALTERED_UTF8_TEST = new RegExp(ALTERED_UTF8_RE.source);
const A_GRAVE_WORD_RE = /\xc3 (?! |quele|quela|quilo|s )/g;
const LOSSY_UTF8_RE = new RegExp(
  [
    '[\\xc2-\\xdf]\\x1a',
    '[\\xc2-\\xc3]\\?',
    '\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]',
    '\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]',
    '[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]',
    '[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]',
    '\\x1a',
  ].join('|'),
  'g',
);

/** Put back byte A0 where a program turned it into a space inside a UTF-8 sequence. */
function restoreByteA0(bin: string): string {
  return bin.replace(A_GRAVE_WORD_RE, '\xc3\xa0 ').replace(ALTERED_UTF8_RE, (m) => m.replace(/ /g, '\xa0'));
}

/** UTF-8 sequences that lost bytes to U+FFFD (byte 1A in the sloppy codecs) decode as one U+FFFD. */
function replaceLossySequences(bin: string): string {
  return bin.replace(LOSSY_UTF8_RE, '\xef\xbf\xbd');
}

/** One step of ftfy's fix_encoding; returns the input itself when nothing applies. */
function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || /^[\x00-\x7f]*$/.test(text) || !isBad(text)) return text;
  const possible = new Set<string>();
  for (const encoding of CHARMAP_ENCODINGS) {
    const encoded = encodeCharmap(text, encoding);
    if (encoded === null) continue;
    possible.add(encoding);
    let bin = bytesToBinary(encoded);
    if (encoding !== 'macroman' && ALTERED_UTF8_TEST.test(bin)) bin = restoreByteA0(bin);
    if (encoding.startsWith('sloppy')) bin = replaceLossySequences(bin);
    const bytes = binaryToBytes(bin);
    const fixed = bytes.includes(0xed) || bytes.includes(0xc0) ? decodeUtf8Variants(bytes) : decodeUtf8Strict(bytes);
    if (fixed !== null) return fixed;
  }
  if (hasMojibakeRun(text)) {
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }
  if (possible.has('latin-1')) {
    if (possible.has('sloppy-windows-1252')) return text;
    // Latin-1 but not Windows-1252: it holds C1 controls, which were meant as Windows-1252.
    return fixC1Controls(text);
  }
  return C1_RE.test(text) ? fixC1Controls(text) : text;
}

/** ftfy.fix_encoding: repeat single steps until the text stops changing. */
export function fixEncoding(text: string): string {
  for (;;) {
    const next = fixEncodingOneStep(text);
    if (next === text) return text;
    text = next;
  }
}

/** ftfy.fixes.fix_c1_controls: C1 controls read as Windows-1252 (undefined bytes stay as they are). */
export function fixC1Controls(text: string): string {
  const map = CHARMAPS.get('sloppy-windows-1252')!.decode;
  return text.replace(/[\x80-\x9f]/g, (c) => String.fromCodePoint(map[c.charCodeAt(0)]!));
}

// Characters that never stand for themselves next to mojibake: bytes 80..BF in these code pages,
// without spaces, dashes, bullets, quotes and ellipses (ftfy's utf8_continuation_strict).
const STRICT_CONTINUATION: ReadonlySet<number> = (() => {
  const s = new Set<number>();
  for (let b = 0x80; b < 0xc0; b++) s.add(b);
  for (const cp of [...'ŠšŒœŽžŸƒˆ˜†‡‰‹›€™']) s.add(cp.codePointAt(0)!);
  return s;
})();

/** Maximal runs of back-to-back mojibake sequences, not preceded by a strict continuation char. */
function mojibakeRuns(text: string): Array<[number, number]> {
  const cps = [...text].map((c) => c.codePointAt(0)!);
  const runs: Array<[number, number]> = [];
  let i = 0;
  while (i < cps.length) {
    let j = i;
    for (let n = sequenceAt(cps, j); n > 0; n = sequenceAt(cps, j)) j += n;
    if (j > i && (i === 0 || !STRICT_CONTINUATION.has(cps[i - 1]!))) {
      runs.push([i, j]);
      i = j;
    } else {
      i += 1;
    }
  }
  return runs;
}

function hasMojibakeRun(text: string): boolean {
  return mojibakeRuns(text).length > 0;
}

/** ftfy.fixes.decode_inconsistent_utf8: fix mojibake runs one by one inside otherwise good text. */
export function decodeInconsistentUtf8(text: string): string {
  const cps = [...text];
  const runs = mojibakeRuns(text);
  if (runs.length === 0) return text;
  let out = '';
  let pos = 0;
  for (const [a, b] of runs) {
    out += cps.slice(pos, a).join('');
    const sub = cps.slice(a, b).join('');
    out += b - a < cps.length && isBad(sub) ? fixEncoding(sub) : sub;
    pos = b;
  }
  return out + cps.slice(pos).join('');
}
