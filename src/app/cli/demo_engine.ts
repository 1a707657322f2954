// The engine demo: train an MLP on two spirals with clipfit's autodiff and AdamW in onnxruntime.

import { trainSpirals } from '../examples/spirals.js';

export async function runEngineDemo(opts: { threads?: number; log: (line: string) => void }): Promise<void> {
  opts.log('Training a 2→64→64→2 MLP on two spirals: graph builder → grad() → AdamW, one onnxruntime run per step');
  const r = await trainSpirals({ threads: opts.threads, log: opts.log });
  opts.log(`done: ${r.steps} steps in ${r.seconds.toFixed(1)} s, loss ${r.losses[0]!.toFixed(3)} → ${r.losses.at(-1)!.toFixed(3)}, training accuracy ${(r.accuracy * 100).toFixed(1)}%`);
}
