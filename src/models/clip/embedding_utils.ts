// Small helpers shared by every encoder path (ClipModel, ONNX artifacts): token ids cut to the
// batch's longest caption, and row-wise L2 normalisation.

import type { Tensor } from '../../runtime/session.js';
import type { ClipTokenizer } from './text/tokenizer.js';

/** Token ids [n, len] with len = the batch's longest caption (sot … eot): the causal mask makes it exact. */
export function tokenizeTrimmed(tokenizer: ClipTokenizer, texts: readonly string[], contextLength: number): Tensor {
  const { ids, shape, eotIndex } = tokenizer.tokenize([...texts], { contextLength });
  const ctx = shape[1];
  const len = Math.max(...eotIndex) + 1;
  const out = new BigInt64Array(texts.length * len);
  for (let i = 0; i < texts.length; i++) for (let j = 0; j < len; j++) out[i * len + j] = BigInt(ids[i * ctx + j]!);
  return { dtype: 'int64', shape: [texts.length, len], data: out };
}

/** In place: each row of an (n, dim) matrix divided by its 2-norm (all-zero rows stay zero). */
export function l2NormalizeRows(m: Float32Array, dim: number): void {
  for (let r = 0; r < m.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += m[r * dim + j]! ** 2;
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) m[r * dim + j]! *= inv;
  }
}
