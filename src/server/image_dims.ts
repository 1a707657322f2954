// Width and height of an image from its header alone — PNG IHDR, the GIF logical screen and first
// frame, JPEG's SOF segment, WebP's VP8 / VP8L / VP8X chunk — so the server can refuse a
// decompression bomb (a few KB declaring 7000×7000 px) before anything decodes it.

import type { ImageType } from './images.js';

export interface Dims {
  width: number;
  height: number;
}

const u16be = (b: Uint8Array, p: number) => (b[p]! << 8) | b[p + 1]!;
const u16le = (b: Uint8Array, p: number) => b[p]! | (b[p + 1]! << 8);
const u24le = (b: Uint8Array, p: number) => b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
const u32be = (b: Uint8Array, p: number) => ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
const tag = (b: Uint8Array, p: number) => String.fromCharCode(b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!);

function png(b: Uint8Array): Dims | null {
  if (b.length < 24 || tag(b, 12) !== 'IHDR') return null;
  return { width: u32be(b, 16), height: u32be(b, 20) };
}

/** The decoder draws the first frame on the logical screen, grown to hold the frame. */
function gif(b: Uint8Array): Dims | null {
  if (b.length < 13) return null;
  let width = u16le(b, 6), height = u16le(b, 8);
  let p = 13;
  if (b[10]! & 0x80) p += 3 << ((b[10]! & 7) + 1);
  while (p < b.length) {
    const kind = b[p]!;
    if (kind === 0x2c) {
      if (p + 9 > b.length) return null;
      width = Math.max(width, u16le(b, p + 1) + u16le(b, p + 5));
      height = Math.max(height, u16le(b, p + 3) + u16le(b, p + 7));
      return { width, height };
    }
    if (kind !== 0x21) break;
    p += 2;
    while (p < b.length && b[p]! !== 0) p += b[p]! + 1;
    p++;
  }
  return { width, height };
}

function jpeg(b: Uint8Array): Dims | null {
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return null;
    const m = b[p + 1]!;
    if (m === 0xff) {
      p++;
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd9)) {
      p += 2;
      continue;
    }
    const len = u16be(b, p + 2);
    const sof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (sof) return p + 9 <= b.length ? { height: u16be(b, p + 5), width: u16be(b, p + 7) } : null;
    p += 2 + len;
  }
  return null;
}

function webp(b: Uint8Array): Dims | null {
  if (b.length < 30) return null;
  const chunk = tag(b, 12);
  if (chunk === 'VP8 ') return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  if (chunk === 'VP8L') {
    const bits = (b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24)) >>> 0;
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  return null;
}

/** The declared size of an image of type `type`, or null when its header does not say. */
export function imageDims(b: Uint8Array, type: ImageType): Dims | null {
  return { png, gif, jpeg, webp }[type](b);
}
