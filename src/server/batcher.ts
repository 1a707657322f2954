// Micro-batching: items submitted by concurrent requests are gathered and run as one batch, which
// costs about as much as a single item on the model (one session run, one matmul per layer). A batch
// runs when it reaches `maxBatch` items or `maxWaitMs` after its first item arrived, whichever comes
// first; batches run one at a time (the model is one resource), the next gathering meanwhile.
// A failed batch is rerun item by item, so only the items that fail alone see the error.

import { ClipfitError } from '../errors.js';

export interface BatcherOptions {
  /** Most items per run (default 32). */
  maxBatch?: number;
  /** Longest wait for more items after the first (default 3 ms). */
  maxWaitMs?: number;
  /** Called after each run with its size. */
  onBatch?: (size: number) => void;
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly maxBatch: number;
  private readonly maxWaitMs: number;
  /** Runs so far. */
  calls = 0;

  constructor(
    /** One batch in, one result per item out (same order). */
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions = {},
  ) {
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
    this.maxWaitMs = Math.max(0, opts.maxWaitMs ?? 3);
  }

  /** The result for `item`, computed in some batch. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Results for several items (they may land in one or more batches). */
  submitAll(items: readonly I[]): Promise<O[]> {
    return Promise.all(items.map((i) => this.submit(i)));
  }

  private schedule(): void {
    if (this.running) return; // the running batch drains the queue when it ends
    if (this.queue.length >= this.maxBatch) {
      this.flush();
      return;
    }
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.running = true;
    this.calls++;
    this.opts.onBatch?.(batch.length);
    this.run(batch.map((p) => p.item))
      .then((out) => {
        if (out.length !== batch.length) throw new ClipfitError(`micro-batch: ${batch.length} items in, ${out.length} results out`);
        batch.forEach((p, i) => p.resolve(out[i]!));
      })
      .catch(async (err: unknown) => {
        // One bad item (an undecodable image) must not fail its neighbours: rerun them one by one.
        if (batch.length === 1) return batch[0]!.reject(err);
        for (const p of batch) {
          this.calls++;
          this.opts.onBatch?.(1);
          await this.run([p.item]).then((o) => p.resolve(o[0]!), p.reject);
        }
      })
      .finally(() => {
        this.running = false;
        if (this.queue.length) this.schedule();
      });
  }
}
