// CLIP's image preprocessing, bit-identical to OpenAI's `_transform(n)` (torchvision 0.14.1 on
// Pillow 9.4.0): Resize(n, BICUBIC) → CenterCrop(n) → convert('RGB') → ToTensor → Normalize.
//
//   resize: the short side becomes n, the long side trunc(n·long/short); an unchanged size is a no-op
//   crop:   top = round((H − n)/2), left = round((W − n)/2) with Python's round (half to even)
//   tensor: x = f32(u8)/255, then (x − mean[c]) / std[c], all in float32, layout [3, n, n]
//
// The resize follows the image's Pillow mode (see resample.ts): P and 1 use NEAREST, RGBA and LA
// are resized premultiplied and then un-premultiplied, L is resized as one channel; convert('RGB')
// then drops alpha and replicates grey; CMYK is resized as 4 channels, then converted per pixel.

import { ConfigError } from '../../../errors.js';
import { OPENAI_MEAN, OPENAI_STD } from './preprocess_constants.js';
import { decodeImage, type DecodedImage, type DecodeOptions } from './image_decode.js';
import { bicubicWindow, nearestWindow, premultiply, unpremultiplyInPlace, type Window } from './resample.js';

export type Triple = readonly [number, number, number];

export const CLIP_MEAN: Triple = OPENAI_MEAN;
export const CLIP_STD: Triple = OPENAI_STD;

export interface PreprocessOptions extends DecodeOptions {
  /** Output side n (CLIP's n_px, e.g. 224). */
  size: number;
  /** Per-channel mean (default CLIP's). */
  mean?: Triple;
  /** Per-channel std (default CLIP's). */
  std?: Triple;
}

/** Python's round() for the halves that crop offsets produce: ties go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** torchvision's Resize(n) target (short side n, long side truncated) and CenterCrop(n) offsets. */
export function resizeWindow(width: number, height: number, n: number): Window {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.trunc((n * long) / short);
  const outW = width <= height ? n : newLong;
  const outH = width <= height ? newLong : n;
  return { outW, outH, left: roundHalfEven((outW - n) / 2), top: roundHalfEven((outH - n) / 2), cropW: n, cropH: n };
}

function checkSize(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ConfigError('size', `must be a positive integer, got ${n}`);
}

/** Resize + centre crop + convert('RGB') of a decoded image: n × n × 3 uint8 (HWC). */
export function resizeCropRgb(img: DecodedImage, n: number): Uint8Array {
  checkSize(n);
  const win = resizeWindow(img.width, img.height, n);
  const unchanged = win.outW === img.width && win.outH === img.height;
  const hasAlpha = img.mode === 'RGBA' || img.mode === 'LA';
  let px: Uint8Array;
  if (img.mode === 'P' || img.mode === '1') px = nearestWindow(img, win);
  else if (hasAlpha && !unchanged) {
    px = bicubicWindow(premultiply(img), win);
    unpremultiplyInPlace(px, img.channels);
  } else px = bicubicWindow(img, win);

  const count = n * n;
  const ch = img.channels;
  if (ch === 3) return px;
  const rgb = new Uint8Array(count * 3);
  if (img.mode === 'CMYK') cmykToRgb(px, rgb, count);
  else if (ch === 4) {
    for (let i = 0, p = 0, q = 0; i < count; i++, p += 4, q += 3) {
      rgb[q] = px[p]!;
      rgb[q + 1] = px[p + 1]!;
      rgb[q + 2] = px[p + 2]!;
    }
  } else {
    for (let i = 0, p = 0, q = 0; i < count; i++, p += ch, q += 3) rgb[q] = rgb[q + 1] = rgb[q + 2] = px[p]!;
  }
  return rgb;
}

/** Pillow's cmyk2rgb: with nk = 255 − k, each of r, g, b = clip8(nk − MULDIV255(c, nk)). */
function cmykToRgb(px: Uint8Array, rgb: Uint8Array, count: number): void {
  for (let i = 0, p = 0, q = 0; i < count; i++, p += 4, q += 3) {
    const nk = 255 - px[p + 3]!;
    for (let b = 0; b < 3; b++) {
      const t = px[p + b]! * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      rgb[q + b] = v < 0 ? 0 : v;
    }
  }
}

const lutCache = new Map<string, Float32Array>();

/** ToTensor + Normalize for every byte value: lut[c·256 + v] = f32(f32(f32(v/255) − mean_c) / std_c). */
function normaliseLut(mean: Triple, std: Triple): Float32Array {
  const key = `${mean.join(',')}/${std.join(',')}`;
  let lut = lutCache.get(key);
  if (lut) return lut;
  lut = new Float32Array(768);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
  }
  if (lutCache.size > 16) lutCache.clear();
  lutCache.set(key, lut);
  return lut;
}

/** HWC uint8 RGB (n × n × 3) → normalised CHW float32, written into `out` at `offset`. */
export function rgbToPixelValues(
  rgb: Uint8Array,
  n: number,
  mean: Triple = CLIP_MEAN,
  std: Triple = CLIP_STD,
  out: Float32Array = new Float32Array(3 * n * n),
  offset = 0,
): Float32Array {
  const lut = normaliseLut(mean, std);
  const plane = n * n;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[offset + i] = lut[rgb[p]!]!;
    out[offset + plane + i] = lut[256 + rgb[p + 1]!]!;
    out[offset + 2 * plane + i] = lut[512 + rgb[p + 2]!]!;
  }
  return out;
}

/** The resized, centre-cropped RGB pixels (n × n × 3 uint8, HWC) of an image file or buffer. */
export async function toRgbU8(input: string | Uint8Array, size: number, opts: DecodeOptions = {}): Promise<Uint8Array> {
  checkSize(size);
  return resizeCropRgb(await decodeImage(input, opts), size);
}

/** CLIP's model input for one image: Float32Array [3, size, size]. */
export async function preprocessImage(input: string | Uint8Array, opts: PreprocessOptions): Promise<Float32Array> {
  const n = opts.size;
  checkSize(n);
  const rgb = resizeCropRgb(await decodeImage(input, opts), n);
  return rgbToPixelValues(rgb, n, opts.mean ?? CLIP_MEAN, opts.std ?? CLIP_STD);
}

/** CLIP's model input for many images: one Float32Array [count, 3, size, size]. Decoding runs on
 * sharp's thread pool, `concurrency` images at a time; the first failure rejects with its ImageError. */
export async function preprocessBatch(
  inputs: readonly (string | Uint8Array)[],
  opts: PreprocessOptions,
  concurrency = 4,
): Promise<Float32Array> {
  const n = opts.size;
  checkSize(n);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new ConfigError('concurrency', `must be a positive integer, got ${concurrency}`);
  const per = 3 * n * n;
  const out = new Float32Array(inputs.length * per);
  const mean = opts.mean ?? CLIP_MEAN;
  const std = opts.std ?? CLIP_STD;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const i = next++;
      const rgb = resizeCropRgb(await decodeImage(inputs[i]!, opts), n);
      rgbToPixelValues(rgb, n, mean, std, out, i * per);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  return out;
}

export { decodeImage, DEFAULT_MAX_PIXELS, type DecodedImage, type DecodeOptions, type ImageMode } from './image_decode.js';
