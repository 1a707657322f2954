// Worker threads that decode and resize request images (decode_worker.ts), so no image — however
// its pixels are packed — holds the event loop. Jobs queue in arrival order; a worker that dies
// fails its job and is replaced.

import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { ImageError } from '../errors.js';
import type { ImageErrorKind } from '../errors.js';
import { moduleWorker } from '../util/module_worker.js';
import type { DecodeJob, DecodeResult } from './decode_worker.js';

interface Pending {
  job: DecodeJob;
  resolve(png: Uint8Array): void;
  reject(err: Error): void;
}

export class DecodePool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private spawned = 0;
  private nextId = 1;
  private closed = false;
  /** Images decoded so far. */
  decoded = 0;

  constructor(private readonly size = Math.max(1, Math.min(2, os.availableParallelism() - 1))) {}

  /** Jobs running in a worker now. */
  get active(): number {
    return this.busy.size;
  }

  /** `bytes` decoded and resized to size × size RGB, as a PNG; ImageError when it cannot be. */
  decode(bytes: Uint8Array, size: number, maxPixels: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error('the decode pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, bytes, size, maxPixels }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length) {
      let w = this.idle.pop();
      if (!w && this.spawned < this.size) w = this.spawn();
      if (!w) return;
      const p = this.queue.shift()!;
      this.busy.set(w, p);
      w.postMessage(p.job);
    }
  }

  private spawn(): Worker {
    this.spawned++;
    const w = moduleWorker(new URL(import.meta.url.endsWith('.ts') ? './decode_worker.ts' : './decode_worker.js', import.meta.url));
    w.on('message', (r: DecodeResult) => {
      const p = this.busy.get(w);
      this.busy.delete(w);
      this.idle.push(w);
      if (p) {
        if ('png' in r) {
          this.decoded++;
          p.resolve(r.png);
        } else p.reject(r.error.image ? new ImageError('image', r.error.kind as ImageErrorKind, r.error.message.replace(/^image 'image' \(\w[\w-]*\): /, '')) : new Error(r.error.message));
      }
      this.pump();
    });
    let dead = false;
    const gone = (err: Error) => {
      if (dead) return;
      dead = true;
      const p = this.busy.get(w);
      this.busy.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      this.spawned--;
      p?.reject(err);
      if (!this.closed) this.pump();
    };
    w.on('error', gone);
    w.on('exit', (code) => gone(new Error(`an image decode worker exited (${code})`)));
    return w;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('the server is closing'));
    await Promise.all([...this.idle, ...this.busy.keys()].map((w) => w.terminate()));
  }
}
