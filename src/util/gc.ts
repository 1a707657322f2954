// A full V8 collection on demand, for the few places that drop hundreds of MB at once (onnxruntime's
// copies of a step's outputs, parameter buffers moved elsewhere): collected now, that memory is
// reused by the next allocations instead of adding to the peak until V8 gets round to it.

import v8 from 'node:v8';
import vm from 'node:vm';

let fullGc: (() => void) | null = null;

export function collectGarbage(): void {
  if (!fullGc) {
    // The flag makes `gc` visible to contexts created after it is set.
    v8.setFlagsFromString('--expose-gc');
    fullGc = vm.runInNewContext('gc') as () => void;
  }
  fullGc();
}

/** Below this, dropped buffers are left to V8's own schedule (a full collection costs more than they do). */
export const COLLECT_BYTES = 64 * 2 ** 20;

/** A full collection when `bytes` of buffers were just dropped and that is worth one. */
export function collectIfLarge(bytes: number): void {
  if (bytes > COLLECT_BYTES) collectGarbage();
}
