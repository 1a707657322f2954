// Decoding images to the pixels and the *mode* that Pillow 9.4's Image.open gives, because the mode
// decides how CLIP's preprocessing resizes: P and 1 with NEAREST, RGBA/LA premultiplied, L as one
// channel. sharp (libvips) decodes; the mode comes from the file itself (PNG IHDR colour type) or
// from sharp's header metadata. ICC profiles are ignored (Pillow does not apply them) and EXIF
// orientation is ignored unless asked for (CLIP never calls exif_transpose).

import { promises as fsp } from 'node:fs';
import sharp from 'sharp';
import { ImageError } from '../../../errors.js';
import type { DecodedImage, ImageMode } from './decoded_image.js';
import { decodeGifFirstFrame } from './gif_decode.js';

export type { DecodedImage, ImageMode } from './decoded_image.js';

export interface DecodeOptions {
  /** Largest accepted width × height (default 50e6); larger images get an ImageError 'too-large'. */
  maxPixels?: number;
  /** Apply the EXIF orientation (default false: CLIP's reference ignores it). */
  honourExif?: boolean;
  /** Name used in errors when the input is bytes (default '<buffer>'). */
  name?: string;
}

export const DEFAULT_MAX_PIXELS = 50e6;

type Format = DecodedImage['format'];

function sniff(b: Uint8Array): Format | null {
  const at = (i: number, s: string) => [...s].every((c, j) => b[i + j] === c.charCodeAt(0));
  if (b.length >= 8 && b[0] === 0x89 && at(1, 'PNG\r\n\x1a\n')) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && (at(0, 'GIF87a') || at(0, 'GIF89a'))) return 'gif';
  if (b.length >= 12 && at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  return null;
}

function describe(b: Uint8Array): string {
  const head = new TextDecoder('latin1').decode(b.subarray(0, 64)).trimStart();
  if (/^<(\?xml|svg|!DOCTYPE svg)/i.test(head) && /<svg/i.test(new TextDecoder('latin1').decode(b.subarray(0, 4096)))) return 'SVG';
  if ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a) || (b[0] === 0x4d && b[1] === 0x4d && b[3] === 0x2a)) return 'TIFF';
  if (b[0] === 0x42 && b[1] === 0x4d) return 'BMP';
  if (head.slice(4, 8) === 'ftyp') return 'HEIF/AVIF';
  return 'unknown';
}

interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colourType: number;
  palette?: Uint8Array;
}

/** IHDR and PLTE of a PNG (chunks: 4-byte big-endian length, 4-byte type, data, 4-byte CRC). */
function readPngHeader(b: Uint8Array, file: string): PngHeader {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = (p: number) => String.fromCharCode(b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!);
  if (b.length < 33 || type(8) !== 'IHDR') throw new ImageError(file, 'corrupt', 'PNG without an IHDR chunk');
  const hdr: PngHeader = { width: dv.getUint32(16), height: dv.getUint32(20), bitDepth: b[24]!, colourType: b[25]! };
  if (hdr.colourType === 3) {
    for (let p = 8; p + 12 <= b.length; ) {
      const len = dv.getUint32(p);
      const t = type(p);
      if (t === 'PLTE' && p + 8 + len <= b.length) {
        hdr.palette = b.slice(p + 8, p + 8 + len - (len % 3));
        break;
      }
      if (t === 'IDAT' || t === 'IEND') break;
      p += 12 + len;
    }
  }
  return hdr;
}

/** Pillow's mode for a PNG colour type / bit depth (PngImagePlugin._MODES). 16-bit grey is
 * Pillow's mode I, which its convert('RGB') clips to 255; we treat it as L (high byte) instead. */
function pngMode(h: PngHeader, file: string): ImageMode {
  switch (h.colourType) {
    case 0:
      return h.bitDepth === 1 ? '1' : 'L';
    case 2:
      return 'RGB';
    case 3:
      return 'P';
    case 4:
      return 'LA';
    case 6:
      return 'RGBA';
    default:
      throw new ImageError(file, 'corrupt', `PNG colour type ${h.colourType} is not valid`);
  }
}

const CHANNELS: Record<ImageMode, number> = { RGB: 3, RGBA: 4, L: 1, LA: 2, P: 3, '1': 1, CMYK: 4 };

/** Pick the mode's channels out of sharp's raw output (which may carry extra bands: grey is
 * replicated to sRGB, a tRNS chunk adds alpha that Pillow keeps out of RGB/L/P). */
function selectChannels(raw: Uint8Array, n: number, rawCh: number, mode: ImageMode): Uint8Array {
  const ch = CHANNELS[mode];
  if (rawCh === ch) return raw;
  const out = new Uint8Array(n * ch);
  const alphaSrc = rawCh === 2 || rawCh === 4 ? rawCh - 1 : -1;
  for (let i = 0, p = 0, o = 0; i < n; i++, p += rawCh) {
    if (mode === 'L' || mode === '1') out[o++] = raw[p]!;
    else if (mode === 'LA') {
      out[o++] = raw[p]!;
      out[o++] = alphaSrc >= 0 ? raw[p + alphaSrc]! : 255;
    } else {
      const g = rawCh < 3;
      out[o++] = raw[p]!;
      out[o++] = raw[g ? p : p + 1]!;
      out[o++] = raw[g ? p : p + 2]!;
      if (ch === 4) out[o++] = alphaSrc >= 0 ? raw[p + alphaSrc]! : 255;
    }
  }
  return out;
}

async function readInput(input: string | Uint8Array, name: string): Promise<Uint8Array> {
  if (typeof input !== 'string') return input;
  try {
    return await fsp.readFile(input);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ImageError(input, code === 'ENOENT' ? 'missing' : 'unreadable', `cannot read (${code ?? (err as Error).message})`, { cause: err });
  }
}

function sharpError(err: unknown, file: string, maxPixels: number): ImageError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(msg)) return new ImageError(file, 'too-large', `more than maxPixels = ${maxPixels} pixels`, { cause: err });
  if (/unsupported image format/i.test(msg)) return new ImageError(file, 'unsupported', msg, { cause: err });
  return new ImageError(file, 'corrupt', `cannot decode: ${msg.split('\n')[0]}`, { cause: err });
}

/** Decode a PNG, JPEG, WebP or GIF (first frame) file or buffer into Pillow's mode and pixels. */
export async function decodeImage(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const file = typeof input === 'string' ? input : (opts.name ?? '<buffer>');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const bytes = await readInput(input, file);
  if (bytes.length === 0) throw new ImageError(file, 'empty', 'zero bytes');
  const format = sniff(bytes);
  if (!format) throw new ImageError(file, 'unsupported', `not PNG, JPEG, WebP or GIF (looks like: ${describe(bytes)})`);

  // GIF: Pillow keeps the first frame as palette indices (mode P, or L for a grey-ramp palette)
  // drawn on a logical screen filled with index 0 or the transparent index; libvips composites to
  // RGBA instead, so GIFs are decoded here.
  if (format === 'gif') return decodeGifFirstFrame(bytes, file, maxPixels);

  let mode: ImageMode | undefined;
  let palette: Uint8Array | undefined;
  if (format === 'png') {
    const h = readPngHeader(bytes, file);
    if (h.width * h.height > maxPixels) throw new ImageError(file, 'too-large', `${h.width}×${h.height} is more than maxPixels = ${maxPixels} pixels`);
    mode = pngMode(h, file);
    palette = h.palette;
  }

  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    let img = sharp(buf, { failOn: 'error', limitInputPixels: Math.max(1, Math.floor(maxPixels)), ignoreIcc: true, pages: 1 });
    const md = await img.metadata();
    const w0 = md.width ?? 0;
    const h0 = md.height ?? 0;
    if (w0 * h0 > maxPixels) throw new ImageError(file, 'too-large', `${w0}×${h0} is more than maxPixels = ${maxPixels} pixels`);
    if (!mode) {
      if (md.space === 'cmyk') mode = 'CMYK';
      else if (md.space === 'b-w' || md.channels === 1 || md.channels === 2) mode = md.hasAlpha ? 'LA' : 'L';
      else mode = md.hasAlpha ? 'RGBA' : 'RGB';
    }
    // Keep CMYK samples as stored (Adobe-inverted ones are un-inverted, as Pillow's CMYK;I does)
    // instead of letting libvips convert them to sRGB through a profile.
    if (mode === 'CMYK') img = img.pipelineColourspace('cmyk').toColourspace('cmyk');
    if (opts.honourExif) img = img.autoOrient();
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    // sharp's raw output is 8-bit unless asked otherwise; 16-bit sources keep their high byte, as Pillow's ;16B rawmodes do.
    const depth = (info as { depth?: string }).depth;
    if (depth !== undefined && depth !== 'uchar') throw new ImageError(file, 'unsupported', `decoded to ${depth} samples, expected 8-bit`);
    if (data.length !== info.width * info.height * info.channels) throw new ImageError(file, 'corrupt', `decoder returned ${data.length} bytes for ${info.width}×${info.height}×${info.channels}`);
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const pixels = selectChannels(raw, info.width * info.height, info.channels, mode);
    const out: DecodedImage = { mode, width: info.width, height: info.height, channels: CHANNELS[mode], data: pixels, format };
    if (palette) out.palette = palette;
    return out;
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw sharpError(err, file, maxPixels);
  }
}
