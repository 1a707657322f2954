// A CSV record reader that works on bytes, so a non-UTF-8 byte is pinned to its row and field: the
// structure bytes (delimiter, quote, CR, LF) are ASCII, and no byte of a multi-byte UTF-8 sequence
// is below 0x80, so splitting first and decoding each field after is exact.
// Dialect: Python's csv `excel`/`excel-tab`/`unix` (RFC 4180): a field that starts with `"` is quoted;
// `""` inside it is one quote; delimiters and line breaks inside quotes are data; text after a
// closing quote is kept (as Python does); a quote inside an unquoted field is literal; records end at
// LF, CRLF or a lone CR. A record is a row as a spreadsheet shows it (a quoted line break does not
// start a new row; a blank line is a row).

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const COMMA = 0x2c;
const TAB = 0x09;

export interface RawField {
  bytes: Uint8Array;
  /** Byte offsets in the file of the field's raw text (quotes included). */
  start: number;
  end: number;
}

export interface RawRecord {
  /** 1-based row. */
  row: number;
  /** 1-based line where the row starts. */
  line: number;
  fields: RawField[];
  /** A structural problem (an unterminated quote). */
  error?: string;
}

/** Skip a UTF-8 byte order mark. */
export const bomLength = (b: Uint8Array): number => (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0);

/** Split bytes into records; stops after `limit` records when given (for sniffing). */
export function readRecords(buf: Uint8Array, delimiter: ',' | '\t', limit = Infinity): RawRecord[] {
  const delim = delimiter === '\t' ? TAB : COMMA;
  const n = buf.length;
  const out: RawRecord[] = [];
  let i = bomLength(buf);
  let line = 1;
  while (i < n && out.length < limit) {
    const rec: RawRecord = { row: out.length + 1, line, fields: [] };
    out.push(rec);
    for (;;) {
      const start = i;
      let bytes: Uint8Array;
      if (buf[i] === QUOTE) {
        const parts: Uint8Array[] = [];
        const openLine = line;
        let seg = ++i;
        let closed = false;
        while (i < n) {
          const c = buf[i]!;
          if (c === QUOTE) {
            parts.push(buf.subarray(seg, i));
            if (buf[i + 1] === QUOTE) {
              seg = i + 1; // keep one quote: the second starts the next segment
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === LF || (c === CR && buf[i + 1] !== LF)) line++;
          i++;
        }
        if (!closed) {
          parts.push(buf.subarray(seg, n));
          rec.error = `unterminated quoted field (the quote opens on line ${openLine})`;
        }
        // Text between the closing quote and the delimiter is kept, as Python's csv does.
        const tail = i;
        while (i < n && buf[i] !== delim && buf[i] !== CR && buf[i] !== LF) i++;
        if (i > tail) parts.push(buf.subarray(tail, i));
        bytes = parts.length === 1 ? parts[0]! : concat(parts);
      } else {
        while (i < n && buf[i] !== delim && buf[i] !== CR && buf[i] !== LF) i++;
        bytes = buf.subarray(start, i);
      }
      rec.fields.push({ bytes, start, end: i });
      if (i < n && buf[i] === delim) {
        i++;
        if (i === n) rec.fields.push({ bytes: new Uint8Array(0), start: n, end: n });
        continue;
      }
      if (i < n) {
        if (buf[i] === CR && buf[i + 1] === LF) i++;
        i++;
        line++;
      }
      break;
    }
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A record of one empty (or all-blank) field: an empty line. */
export const isBlankRecord = (r: RawRecord): boolean =>
  !r.error && r.fields.length === 1 && r.fields[0]!.bytes.every((b) => b === 0x20 || b === TAB);

/**
 * Which delimiter gives `columns` fields on the most of the first 50 non-blank records. On a tie the
 * tab wins when the sample holds one: captions often contain commas, CSV text almost never a tab.
 */
export function sniffDelimiter(buf: Uint8Array, columns = 2): ',' | '\t' {
  const sample = buf.subarray(0, Math.min(buf.length, 1 << 16));
  const score = (d: ',' | '\t') =>
    readRecords(sample, d, 60)
      .filter((r) => !isBlankRecord(r))
      .slice(0, 50)
      .filter((r) => r.fields.length === columns).length;
  const comma = score(',');
  const tab = score('\t');
  if (tab > comma) return '\t';
  if (comma > tab) return ',';
  return sample.includes(TAB) ? '\t' : ',';
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(b: Uint8Array, from = 0, to = b.length): number {
  let i = from;
  while (i < to) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // [lead byte range, continuation count, allowed range of the first continuation byte]
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0; // no overlong forms
      if (c === 0xed) hi = 0x9f; // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f; // ≤ U+10FFFF
    } else return i;
    if (i + need >= to) return i; // truncated sequence
    const b1 = b[i + 1]!;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k <= need; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}
