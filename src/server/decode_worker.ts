// A decode worker of the server (decode_pool.ts): an uploaded image is decoded and resized to the
// model's input size here, off the event loop — the GIF decoder and the resampler are plain
// JavaScript and would stall every other request — and handed back as a small PNG of exactly
// size × size RGB pixels, which the model's own preprocessing then takes unchanged.

import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { ImageError } from '../errors.js';
import { decodeImage } from '../models/clip/image/image_decode.js';
import { resizeCropRgb } from '../models/clip/image/preprocess.js';

export interface DecodeJob {
  id: number;
  bytes: Uint8Array;
  size: number;
  maxPixels: number;
}

export type DecodeResult = { id: number; png: Uint8Array } | { id: number; error: { image: boolean; kind: string; message: string } };

parentPort!.on('message', async (job: DecodeJob) => {
  let out: DecodeResult;
  try {
    const rgb = resizeCropRgb(await decodeImage(job.bytes, { maxPixels: job.maxPixels, name: 'image' }), job.size);
    const png = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width: job.size, height: job.size, channels: 3 } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    out = { id: job.id, png: new Uint8Array(png) };
  } catch (err) {
    const e = err as Error;
    out = { id: job.id, error: { image: err instanceof ImageError, kind: err instanceof ImageError ? err.kind : 'internal', message: e.message } };
  }
  parentPort!.postMessage(out);
});
