// CLIP pixels for a batch of training or evaluation images given as bytes or as strings (paths,
// file://, http(s), data: — read by the data layer's image resolver), each with the name errors
// give it. (An error raised here in an image worker thread crosses back through util/error_wire.ts.)

import { readImageSource } from '../data/image_source.js';
import { decodeImage, resizeCropRgb, rgbToPixelValues, CLIP_MEAN, CLIP_STD } from '../models/clip/image/preprocess.js';
import type { PreprocessOptions } from '../models/clip/image/preprocess.js';

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
