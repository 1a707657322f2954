// The first frame of a GIF as Pillow 9.4's GifImagePlugin gives it: palette indices on the logical
// screen (grown to cover the frame), pre-filled with the frame's transparent index or else 0, and
// mode P, or mode L when the frame's palette is absent or is the identity grey ramp (index i ↦
// (i,i,i)), in which case the indices are the grey levels and get BICUBIC, not NEAREST. Pillow's
// convert('RGB') ignores transparency; palette entries past the file's palette are (i,i,i).

import { ImageError } from '../../../errors.js';
import type { DecodedImage } from './decoded_image.js';

/** True when the palette is not the identity grey ramp (Pillow's _is_palette_needed). */
function paletteNeeded(p: Uint8Array): boolean {
  for (let i = 0; i + 2 < p.length; i += 3) if (!(p[i] === i / 3 && p[i + 1] === i / 3 && p[i + 2] === i / 3)) return true;
  return false;
}

/** Decode GIF LZW data (concatenated sub-blocks) into `count` indices; returns how many were made. */
function lzw(data: Uint8Array, minCodeSize: number, out: Uint8Array): number {
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  const prefix = new Int16Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const stack = new Uint8Array(4097);
  for (let i = 0; i < clear; i++) {
    suffix[i] = i;
    first[i] = i;
    prefix[i] = -1;
  }
  let codeSize = minCodeSize + 1;
  let next = eoi + 1;
  let prev = -1;
  let bitBuf = 0;
  let bitCount = 0;
  let n = 0;
  let pos = 0;
  while (n < out.length) {
    while (bitCount < codeSize && pos < data.length) {
      bitBuf |= data[pos++]! << bitCount;
      bitCount += 8;
    }
    if (bitCount < codeSize) break;
    const code = bitBuf & ((1 << codeSize) - 1);
    bitBuf >>>= codeSize;
    bitCount -= codeSize;
    if (code === clear) {
      codeSize = minCodeSize + 1;
      next = eoi + 1;
      prev = -1;
      continue;
    }
    if (code === eoi) break;
    let c = code;
    let sp = 0;
    if (prev < 0) {
      if (code >= clear) break; // the first code after a clear must be a literal
      out[n++] = code;
      prev = code;
      continue;
    }
    if (code > next || (code === next && next >= 4096)) break; // corrupt stream
    if (code === next) {
      // KwKwK: the new entry is prev's string plus its own first byte.
      stack[sp++] = first[prev]!;
      c = prev;
    }
    while (c >= clear) {
      stack[sp++] = suffix[c]!;
      c = prefix[c]!;
    }
    stack[sp++] = c;
    const head = c;
    while (sp > 0 && n < out.length) out[n++] = stack[--sp]!;
    if (next < 4096) {
      prefix[next] = prev;
      suffix[next] = head;
      first[next] = first[prev]!;
      next++;
      if (next === 1 << codeSize && codeSize < 12) codeSize++;
    }
    prev = code;
  }
  return n;
}

/** Row order of an interlaced frame: every 8th from 0, every 8th from 4, every 4th from 2, odd rows. */
function interlacedRows(h: number): Int32Array {
  const rows = new Int32Array(h);
  let k = 0;
  for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]] as const) for (let y = start; y < h; y += step) rows[k++] = y;
  return rows;
}

export function decodeGifFirstFrame(b: Uint8Array, file: string, maxPixels: number): DecodedImage {
  const corrupt = (d: string) => new ImageError(file, 'corrupt', `GIF: ${d}`);
  if (b.length < 13) throw corrupt('truncated header');
  const u16 = (p: number) => b[p]! | (b[p + 1]! << 8);
  let width = u16(6);
  let height = u16(8);
  let pos = 13;
  let globalPalette: Uint8Array | null = null;
  const flags = b[10]!;
  if (flags & 0x80) {
    const len = 3 << ((flags & 7) + 1);
    const p = b.subarray(pos, pos + len);
    pos += len;
    if (paletteNeeded(p)) globalPalette = p;
  }
  // Sub-blocks: a length byte, that many bytes, …, until a zero length.
  const readBlocks = (): Uint8Array[] => {
    const blocks: Uint8Array[] = [];
    while (pos < b.length) {
      const n = b[pos++]!;
      if (n === 0) return blocks;
      blocks.push(b.subarray(pos, pos + n));
      pos += n;
    }
    return blocks;
  };
  let transparency = -1;
  for (;;) {
    if (pos >= b.length || b[pos] === 0x3b) throw corrupt('no image frame');
    const tag = b[pos++]!;
    if (tag === 0x21) {
      const label = b[pos++];
      const blocks = readBlocks();
      const gce = blocks[0];
      if (label === 0xf9 && gce && gce.length >= 4 && gce[0]! & 1) transparency = gce[3]!;
      continue;
    }
    if (tag !== 0x2c) continue; // Pillow skips unknown bytes between blocks
    if (pos + 10 > b.length) throw corrupt('truncated image descriptor');
    const x0 = u16(pos);
    const y0 = u16(pos + 2);
    const fw = u16(pos + 4);
    const fh = u16(pos + 6);
    const fflags = b[pos + 8]!;
    pos += 9;
    let palette = globalPalette;
    if (fflags & 0x80) {
      const len = 3 << ((fflags & 7) + 1);
      const p = b.subarray(pos, pos + len);
      pos += len;
      palette = paletteNeeded(p) ? p : null;
    }
    width = Math.max(width, x0 + fw);
    height = Math.max(height, y0 + fh);
    if (width * height > maxPixels) throw new ImageError(file, 'too-large', `${width}×${height} is more than maxPixels = ${maxPixels} pixels`);
    if (width === 0 || height === 0) throw corrupt(`empty image ${width}×${height}`);
    const minCodeSize = b[pos++]!;
    if (minCodeSize === undefined || minCodeSize < 1 || minCodeSize > 8) throw corrupt(`bad LZW code size ${minCodeSize}`);
    const blocks = readBlocks();
    const total = blocks.reduce((a, x) => a + x.length, 0);
    const data = new Uint8Array(total);
    let o = 0;
    for (const x of blocks) {
      data.set(x, o);
      o += x.length;
    }
    const idx = new Uint8Array(fw * fh);
    const made = lzw(data, minCodeSize, idx);
    if (made < idx.length) throw corrupt(`frame data ends after ${made} of ${idx.length} pixels (truncated or corrupt)`);

    const canvas = new Uint8Array(width * height).fill(transparency >= 0 ? transparency : 0);
    const rows = fflags & 0x40 ? interlacedRows(fh) : null;
    for (let r = 0; r < fh; r++) {
      const y = y0 + (rows ? rows[r]! : r);
      canvas.set(idx.subarray(r * fw, (r + 1) * fw), y * width + x0);
    }
    if (!palette) return { mode: 'L', width, height, channels: 1, data: canvas, format: 'gif' };
    const lut = new Uint8Array(768);
    for (let i = 0; i < 256; i++) lut[3 * i] = lut[3 * i + 1] = lut[3 * i + 2] = i;
    lut.set(palette.subarray(0, 768));
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0, q = 0; i < canvas.length; i++, q += 3) {
      const c = canvas[i]! * 3;
      rgb[q] = lut[c]!;
      rgb[q + 1] = lut[c + 1]!;
      rgb[q + 2] = lut[c + 2]!;
    }
    return { mode: 'P', width, height, channels: 3, data: rgb, palette: palette.slice(), format: 'gif' };
  }
}
