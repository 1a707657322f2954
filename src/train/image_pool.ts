// Images are decoded and preprocessed in worker threads while onnxruntime trains on the previous
// batch: a session run blocks the main thread, so decoding there could not overlap with it.
// With numWorkers = 0 the work happens in-process. A failure in a worker comes back as the same
// typed error (an ImageError keeps its kind and file; see pixels.ts).

import type { Worker } from 'node:worker_threads';
import type { PreprocessOptions } from '../models/clip/image/preprocess.js';
import { moduleWorker, siblingModule } from '../util/module_worker.js';
import { errorFromWire } from '../util/error_wire.js';
import { preprocessInputs } from './pixels.js';
import type { WireError } from '../util/error_wire.js';

interface Pending {
  resolve(p: Float32Array): void;
  reject(e: Error): void;
}

export class ImagePool {
  private workers: Worker[] = [];
  private pending = new Map<number, Pending>();
  private nextId = 0;
  private turn = 0;

  constructor(readonly numWorkers: number) {
    for (let i = 0; i < numWorkers; i++) {
      const w = moduleWorker(siblingModule(import.meta.url, 'image_worker'));
      w.on('message', (m: { id: number; pixels?: Float32Array; error?: WireError }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(errorFromWire(m.error));
        else p.resolve(m.pixels!);
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  /** Pixel tensor [n, 3, size, size] for the inputs (bytes, or paths and URIs), in order; errors
   * name an input by its entry in `names`. */
  preprocess(inputs: (string | Uint8Array)[], names: string[], opts: PreprocessOptions): Promise<Float32Array> {
    if (this.workers.length === 0) return preprocessInputs(inputs, names, opts, 4);
    const id = this.nextId++;
    const w = this.workers[this.turn++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, inputs, names, opts });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
