// Worker thread: read, decode and preprocess one batch of images, return the pixel tensor
// (transferred), or the first failure in wire form (util/error_wire.ts: an ImageError keeps its kind and file).

import { parentPort } from 'node:worker_threads';
import type { PreprocessOptions } from '../models/clip/image/preprocess.js';
import { errorToWire } from '../util/error_wire.js';
import { preprocessInputs } from './pixels.js';

export interface ImageJob {
  id: number;
  inputs: (string | Uint8Array)[];
  names: string[];
  opts: PreprocessOptions;
}

parentPort!.on('message', (job: ImageJob) => {
  preprocessInputs(job.inputs, job.names, job.opts, 4).then(
    (pixels) => parentPort!.postMessage({ id: job.id, pixels }, [pixels.buffer as ArrayBuffer]),
    (err: unknown) => parentPort!.postMessage({ id: job.id, error: errorToWire(err) }),
  );
});
