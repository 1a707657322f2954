// Worker thread: decode and preprocess one batch of images, return the pixel tensor (transferred).

import { parentPort } from 'node:worker_threads';
import { preprocessBatch } from '../models/clip/preprocess.js';
import type { PreprocessOptions } from '../models/clip/preprocess.js';

export interface ImageJob {
  id: number;
  inputs: (string | Uint8Array)[];
  opts: PreprocessOptions;
}

parentPort!.on('message', (job: ImageJob) => {
  preprocessBatch(job.inputs, job.opts, 4).then(
    (pixels) => parentPort!.postMessage({ id: job.id, pixels }, [pixels.buffer as ArrayBuffer]),
    (err: Error) => parentPort!.postMessage({ id: job.id, error: { name: err.name, message: err.message } }),
  );
});
