// CLIP pixels for a batch of training or evaluation images given as bytes or as strings (paths,
// file://, http(s), data: — read by the data layer's image resolver), each with the name errors
// give it. And the wire form of the errors, so an ImageError raised in an image worker thread
// reaches the main thread as an ImageError with its kind, file and detail (structured cloning
// keeps only an Error's message).

import { readImageSource } from '../data/image_source.js';
import { ClipfitError, ImageError } from '../errors.js';
import type { ImageErrorKind } from '../errors.js';
import { decodeImage, resizeCropRgb, rgbToPixelValues, CLIP_MEAN, CLIP_STD } from '../models/clip/preprocess.js';
import type { PreprocessOptions } from '../models/clip/preprocess.js';

/** [n, 3, size, size] pixels of `inputs`, in order; the first failure rejects with its ImageError,
 * whose `file` is the input's name. */
export async function preprocessInputs(inputs: readonly (string | Uint8Array)[], names: readonly string[], opts: PreprocessOptions, concurrency = 4): Promise<Float32Array> {
  const n = opts.size;
  const per = 3 * n * n;
  const out = new Float32Array(inputs.length * per);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const i = next++;
      const input = inputs[i]!;
      const bytes = typeof input === 'string' ? (await readImageSource(input)).bytes : input;
      const rgb = resizeCropRgb(await decodeImage(bytes, { ...opts, name: names[i] ?? (typeof input === 'string' ? input : '<buffer>') }), n);
      rgbToPixelValues(rgb, n, opts.mean ?? CLIP_MEAN, opts.std ?? CLIP_STD, out, i * per);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  return out;
}

export type WireError = { name: string; message: string; image?: { file: string; kind: ImageErrorKind; detail: string } };

export function errorToWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  const w: WireError = { name: e.name, message: e.message };
  if (err instanceof ImageError) w.image = { file: err.file, kind: err.kind, detail: err.detail };
  return w;
}

export function errorFromWire(w: WireError): Error {
  if (w.image) return new ImageError(w.image.file, w.image.kind, w.image.detail);
  const e = new ClipfitError(w.message);
  e.name = w.name;
  return e;
}
