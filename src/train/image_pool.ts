// Images are decoded and preprocessed in worker threads while onnxruntime trains on the previous
// batch: a session run blocks the main thread, so decoding there could not overlap with it.
// With numWorkers = 0 the work happens in-process.

import type { Worker } from 'node:worker_threads';
import { ClipfitError } from '../errors.js';
import { preprocessBatch } from '../models/clip/preprocess.js';
import type { PreprocessOptions } from '../models/clip/preprocess.js';
import { moduleWorker } from '../util/module_worker.js';

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
      const w = moduleWorker(new URL('./image_worker' + (import.meta.url.endsWith('.ts') ? '.ts' : '.js'), import.meta.url));
      w.on('message', (m: { id: number; pixels?: Float32Array; error?: { name: string; message: string } }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) {
          p.reject(new ClipfitError(m.error.message));
        } else p.resolve(m.pixels!);
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  /** Pixel tensor [n, 3, size, size] for the inputs, in order. */
  preprocess(inputs: (string | Uint8Array)[], opts: PreprocessOptions): Promise<Float32Array> {
    if (this.workers.length === 0) return preprocessBatch(inputs, opts, 4);
    const id = this.nextId++;
    const w = this.workers[this.turn++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, inputs, opts });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
