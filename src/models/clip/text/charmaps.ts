// Single-byte code pages that mojibake comes from, as ftfy 6.3.1 tries them (chardata.CHARMAP_ENCODINGS):
// bytes 0x80..0xFF of each, in order. "sloppy-" pages decode the bytes their standard leaves undefined
// as the Latin-1 character of the same number, and turn U+FFFD into byte 0x1A. The tables were taken
// from CPython 3.11's codecs (cp1250..cp1257, iso8859_2, mac_roman, cp437), not from TextDecoder:
// Node's TextDecoder('windows-1252') decodes as Latin-1, and small-icu builds lack the others.

import { ClipfitError } from '../../../errors.js';

const HIGH_HALVES: Record<string, string> = {
  'sloppy-windows-1252': '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ\u00a0¡¢£¤¥¦§¨©ª«¬\u00ad®¯°±²³´µ¶·¸¹º»¼½¾¿' +
    'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ',
  'sloppy-windows-1251': 'ЂЃ‚ѓ„…†‡€‰Љ‹ЊЌЋЏђ‘’“”•–—\u0098™љ›њќћџ\u00a0ЎўЈ¤Ґ¦§Ё©Є«¬\u00ad®Ї°±Ііґµ¶·ё№є»јЅѕї' +
    'АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопрстуфхцчшщъыьэюя',
  'sloppy-windows-1250': '€\u0081‚\u0083„…†‡\u0088‰Š‹ŚŤŽŹ\u0090‘’“”•–—\u0098™š›śťžź\u00a0ˇ˘Ł¤Ą¦§¨©Ş«¬\u00ad®Ż°±˛ł´µ¶·¸ąş»Ľ˝ľż' +
    'ŔÁÂĂÄĹĆÇČÉĘËĚÍÎĎĐŃŇÓÔŐÖ×ŘŮÚŰÜÝŢßŕáâăäĺćçčéęëěíîďđńňóôőö÷řůúűüýţ˙',
  'sloppy-windows-1253': '€\u0081‚ƒ„…†‡\u0088‰\u008a‹\u008c\u008d\u008e\u008f\u0090‘’“”•–—\u0098™\u009a›\u009c\u009d\u009e\u009f\u00a0΅Ά£¤¥¦§¨©ª«¬\u00ad®―°±²³΄µ¶·ΈΉΊ»Ό½ΎΏ' +
    'ΐΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡÒΣΤΥΦΧΨΩΪΫάέήίΰαβγδεζηθικλμνξοπρςστυφχψωϊϋόύώÿ',
  'sloppy-windows-1254': '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008d\u008e\u008f\u0090‘’“”•–—˜™š›œ\u009d\u009eŸ\u00a0¡¢£¤¥¦§¨©ª«¬\u00ad®¯°±²³´µ¶·¸¹º»¼½¾¿' +
    'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏĞÑÒÓÔÕÖ×ØÙÚÛÜİŞßàáâãäåæçèéêëìíîïğñòóôõö÷øùúûüışÿ',
  'sloppy-windows-1257': '€\u0081‚\u0083„…†‡\u0088‰\u008a‹\u008c¨ˇ¸\u0090‘’“”•–—\u0098™\u009a›\u009c¯˛\u009f\u00a0¡¢£¤¥¦§Ø©Ŗ«¬\u00ad®Æ°±²³´µ¶·ø¹ŗ»¼½¾æ' +
    'ĄĮĀĆÄÅĘĒČÉŹĖĢĶĪĻŠŃŅÓŌÕÖ×ŲŁŚŪÜŻŽßąįāćäåęēčéźėģķīļšńņóōõö÷ųłśūüżž˙',
  'iso-8859-2': '\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008a\u008b\u008c\u008d\u008e\u008f\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009a\u009b\u009c\u009d\u009e\u009f\u00a0Ą˘Ł¤ĽŚ§¨ŠŞŤŹ\u00adŽŻ°ą˛ł´ľśˇ¸šşťź˝žż' +
    'ŔÁÂĂÄĹĆÇČÉĘËĚÍÎĎĐŃŇÓÔŐÖ×ŘŮÚŰÜÝŢßŕáâăäĺćçčéęëěíîďđńňóôőö÷řůúűüýţ˙',
  'macroman': 'ÄÅÇÉÑÖÜáàâäãåçéèêëíìîïñóòôöõúùûü†°¢£§•¶ß®©™´¨≠ÆØ∞±≤≥¥µ∂∑∏π∫ªºΩæø' +
    '¿¡¬√ƒ≈∆«»…\u00a0ÀÃÕŒœ–—“”‘’÷◊ÿŸ⁄€‹›ﬁﬂ‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ\uf8ffÒÚÛÙıˆ˜¯˘˙˚¸˝˛ˇ',
  'cp437': 'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐' +
    '└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0',
};

/** Encodings in the order ftfy tries them. */
export const CHARMAP_ENCODINGS = [
  'latin-1',
  'sloppy-windows-1252',
  'sloppy-windows-1251',
  'sloppy-windows-1250',
  'sloppy-windows-1253',
  'sloppy-windows-1254',
  'sloppy-windows-1257',
  'iso-8859-2',
  'macroman',
  'cp437',
] as const;
export type CharmapEncoding = (typeof CHARMAP_ENCODINGS)[number];

export interface Charmap {
  /** byte → code point, for all 256 bytes. */
  readonly decode: Uint32Array;
  /** code point → byte. */
  readonly encode: ReadonlyMap<number, number>;
}

function buildCharmap(name: CharmapEncoding): Charmap {
  const decode = new Uint32Array(256);
  for (let b = 0; b < 128; b++) decode[b] = b;
  if (name === 'latin-1') {
    for (let b = 128; b < 256; b++) decode[b] = b;
  } else {
    const high = [...HIGH_HALVES[name]!];
    if (high.length !== 128) throw new ClipfitError(`charmap ${name}: ${high.length} entries, not 128`);
    for (let b = 128; b < 256; b++) decode[b] = high[b - 128]!.codePointAt(0)!;
    if (name.startsWith('sloppy-')) decode[0x1a] = 0xfffd;
  }
  const encode = new Map<number, number>();
  for (let b = 255; b >= 0; b--) encode.set(decode[b]!, b);
  return { decode, encode };
}

export const CHARMAPS: ReadonlyMap<CharmapEncoding, Charmap> = new Map(
  CHARMAP_ENCODINGS.map((e) => [e, buildCharmap(e)] as const),
);

/**
 * Encode `text` in a single-byte code page; null when some character has no byte there
 * (ftfy's `possible_encoding` is exactly "this does not return null").
 */
export function encodeCharmap(text: string, encoding: CharmapEncoding): Uint8Array | null {
  const map = CHARMAPS.get(encoding)!.encode;
  const out: number[] = [];
  for (const ch of text) {
    const b = map.get(ch.codePointAt(0)!);
    if (b === undefined) return null;
    out.push(b);
  }
  return Uint8Array.from(out);
}

/** Decode bytes with a single-byte code page (never fails). */
export function decodeCharmap(bytes: Uint8Array, encoding: CharmapEncoding): string {
  const map = CHARMAPS.get(encoding)!.decode;
  let s = '';
  for (const b of bytes) s += String.fromCodePoint(map[b]!);
  return s;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Python's `bytes.decode('utf-8')`: null where Python raises UnicodeDecodeError. The BOM is kept. */
export function decodeUtf8Strict(bytes: Uint8Array): string | null {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * ftfy's "utf-8-variants" codec: standard UTF-8 plus CESU-8 (an astral character written as two
 * 3-byte surrogate halves ED A0..AF xx ED B0..BF xx) and Java's C0 80 for U+0000.
 */
export function decodeUtf8Variants(bytes: Uint8Array): string | null {
  let out = '';
  let start = 0;
  const flush = (end: number): boolean => {
    if (end <= start) return true;
    const part = decodeUtf8Strict(bytes.subarray(start, end));
    if (part === null) return false;
    out += part;
    return true;
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0xc0 && bytes[i + 1] === 0x80) {
      if (!flush(i)) return null;
      out += '\0';
      start = i + 2;
      i += 1;
    } else if (b === 0xed && isCesuPair(bytes, i)) {
      if (!flush(i)) return null;
      const hi = 0xd000 | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f);
      const lo = 0xd000 | ((bytes[i + 4]! & 0x3f) << 6) | (bytes[i + 5]! & 0x3f);
      out += String.fromCharCode(hi, lo);
      start = i + 6;
      i += 5;
    }
  }
  return flush(bytes.length) ? out : null;
}

function isCesuPair(b: Uint8Array, i: number): boolean {
  const inRange = (v: number | undefined, lo: number, hi: number) => v !== undefined && v >= lo && v <= hi;
  return (
    inRange(b[i + 1], 0xa0, 0xaf) &&
    inRange(b[i + 2], 0x80, 0xbf) &&
    b[i + 3] === 0xed &&
    inRange(b[i + 4], 0xb0, 0xbf) &&
    inRange(b[i + 5], 0x80, 0xbf)
  );
}

/** Bytes ↔ a "binary string" (one char per byte), so byte-level regexes can run on them. */
export function bytesToBinary(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
export function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
