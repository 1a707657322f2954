// Source images → size × size RGB PNGs on white, the same way for every style.
//
// Why white and RGB: CLIP preprocessing (models/clip/image/preprocess.ts) follows Pillow's convert('RGB'),
// which drops alpha without compositing, so a transparent pixel becomes whatever colour it stores:
// black in most emoji PNGs, white or anything in others. That would give each style its own
// background, a shortcut a model could learn instead of the emoji. Compositing everything on white
// (alpha-over: out = a·c + (1 − a)·255) and storing 3 channels makes the background one constant.
//
// PNG sources (emoji-datasource, 64×64) are flattened, then resized with Lanczos-3 only when
// size ≠ 64. SVG sources (OpenMoji, viewBox 72×72) are rendered by resvg straight at `size` on white,
// then stored as RGB. Files are written to a temporary name and renamed, so an interrupted build
// never leaves a truncated PNG, and a rerun skips files that already are size × size RGB PNGs
// (another size, or anything unreadable, is rewritten).

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { renderAsync } from '@resvg/resvg-js';
import sharp from 'sharp';
import { ImageError } from '../../../errors.js';

const WHITE = { r: 255, g: 255, b: 255 };

/** An image file or encoded bytes → size × size RGB PNG bytes, composited on white. */
export async function whitePng(input: string | Buffer, size: number, name = typeof input === 'string' ? input : '<buffer>'): Promise<Buffer> {
  try {
    let img = sharp(input).flatten({ background: WHITE });
    const meta = await sharp(input).metadata();
    if (meta.width !== size || meta.height !== size) {
      img = img.resize(size, size, { fit: 'contain', background: WHITE, kernel: 'lanczos3' });
    }
    return await img.removeAlpha().toColourspace('srgb').png().toBuffer();
  } catch (err) {
    throw new ImageError(name, 'corrupt', `cannot convert to a ${size}×${size} RGB PNG: ${(err as Error).message}`, { cause: err });
  }
}

/** An SVG file → size × size RGB PNG bytes, rendered by resvg on white. */
export async function svgToPng(file: string, size: number): Promise<Buffer> {
  let svg: Buffer;
  try {
    svg = await fsp.readFile(file);
  } catch (err) {
    throw new ImageError(file, 'missing', (err as Error).message, { cause: err });
  }
  let png: Buffer;
  try {
    const rendered = await renderAsync(svg, { fitTo: { mode: 'width', value: size }, background: 'white', font: { loadSystemFonts: false } });
    png = rendered.asPng();
  } catch (err) {
    throw new ImageError(file, 'corrupt', `resvg cannot render it: ${(err as Error).message}`, { cause: err });
  }
  return whitePng(png, size, file);
}

export type WriteOutcome = 'written' | 'skipped';

/** True when `file` is already a size × size 8-bit RGB PNG: its IHDR says so (PNG signature, then
 * the IHDR chunk: width and height as big-endian uint32 at bytes 16 and 20, bit depth at 24, colour
 * type at 25, where 2 = RGB). */
async function isDone(file: string, size: number): Promise<boolean> {
  let fh;
  try {
    fh = await fsp.open(file, 'r');
  } catch {
    return false;
  }
  try {
    const b = Buffer.alloc(26);
    const { bytesRead } = await fh.read(b, 0, 26, 0);
    return bytesRead === 26 && b.readUInt32BE(0) === 0x89504e47 && b.toString('latin1', 12, 16) === 'IHDR' && b.readUInt32BE(16) === size && b.readUInt32BE(20) === size && b[24] === 8 && b[25] === 2;
  } finally {
    await fh.close();
  }
}

/** Write `dest` from `src` (a .png or .svg) unless it already holds such an image (or `force`). */
export async function rasteriseTo(src: string, dest: string, size: number, force = false): Promise<WriteOutcome> {
  if (!force && (await isDone(dest, size))) return 'skipped';
  const bytes = /\.svg$/i.test(src) ? await svgToPng(src, size) : await whitePng(src, size);
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, bytes);
  await fsp.rename(tmp, dest);
  return 'written';
}

/** Run `fn` over `items` with at most `concurrency` in flight; results in input order. */
export async function mapPool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return out;
}
