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
