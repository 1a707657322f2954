// One finite-difference case (at least) for every op that has a gradient rule, plus the
// compositions (GELU, QuickGELU, L2-normalize, cross-entropy). gradcheck.test.ts fails when an op
// with a rule has no case here.

import type { GradCheckCase } from '../src/autodiff/gradcheck.js';
import * as F from '../src/ops/index.js';
import { emit1 } from '../src/ops/index.js';
import { ONNX_DTYPE } from '../src/onnx/dtype.js';
import { loraLinear } from '../src/models/clip/lora.js';

const A = (shape: number[], extra: Partial<GradCheckCase['inputs'][number]> = {}) => ({ name: 'a', shape, ...extra });
const B = (shape: number[], extra: Partial<GradCheckCase['inputs'][number]> = {}) => ({ name: 'b', shape, ...extra });

export const cases: GradCheckCase[] = [
  { op: 'Add', label: 'broadcast [2,3,4]+[3,1]', inputs: [A([2, 3, 4]), B([3, 1])], build: ([a, b]) => F.add(a!, b!) },
  { op: 'Sub', inputs: [A([2, 3]), B([3])], build: ([a, b]) => F.sub(a!, b!) },
  { op: 'Mul', inputs: [A([2, 3]), B([2, 1])], build: ([a, b]) => F.mul(a!, b!) },
  { op: 'Div', inputs: [A([2, 3]), B([3], { lo: 0.5, hi: 2 })], build: ([a, b]) => F.div(a!, b!) },
  { op: 'Pow', inputs: [A([2, 3], { lo: 0.5, hi: 2 }), B([3], { lo: 0.5, hi: 2 })], build: ([a, b]) => F.pow(a!, b!) },
  { op: 'Max', inputs: [A([2, 3]), B([2, 3])], build: ([a, b]) => F.max(a!, b!) },
  { op: 'Min', inputs: [A([2, 3]), B([3])], build: ([a, b]) => F.min(a!, b!) },
  {
    op: 'Where',
    inputs: [{ name: 'c', shape: [2, 3], diff: false }, A([2, 3]), B([3])],
    build: ([c, a, b]) => F.where(F.greater(c!, 0), a!, b!),
  },
  { op: 'Sum', inputs: [A([2, 3]), B([3]), { name: 'c', shape: [2, 1] }], build: ([a, b, c]) => F.sum([a!, b!, c!]) },
  { op: 'Neg', inputs: [A([2, 3])], build: ([a]) => F.neg(a!) },
  { op: 'Identity', inputs: [A([2, 3])], build: ([a]) => F.identity(a!) },
  { op: 'Exp', inputs: [A([2, 3])], build: ([a]) => F.exp(a!) },
  { op: 'Log', inputs: [A([2, 3], { lo: 0.5, hi: 2 })], build: ([a]) => F.log(a!) },
  { op: 'Sqrt', inputs: [A([2, 3], { lo: 0.5, hi: 2 })], build: ([a]) => F.sqrt(a!) },
  { op: 'Reciprocal', inputs: [A([2, 3], { lo: 0.5, hi: 2 })], build: ([a]) => F.reciprocal(a!) },
  { op: 'Tanh', inputs: [A([2, 3])], build: ([a]) => F.tanh(a!) },
  { op: 'Erf', inputs: [A([2, 3])], build: ([a]) => F.erf(a!) },
  { op: 'Sigmoid', inputs: [A([2, 3])], build: ([a]) => F.sigmoid(a!) },
  { op: 'Relu', inputs: [A([2, 3], { values: [-1, -0.5, 0.3, 0.7, -0.2, 1.1] })], build: ([a]) => F.relu(a!) },
  { op: 'Abs', inputs: [A([2, 3], { values: [-1, -0.5, 0.3, 0.7, -0.2, 1.1] })], build: ([a]) => F.abs(a!) },
  { op: 'Clip', inputs: [A([2, 3], { values: [-1, -0.5, 0.3, 0.7, -0.2, 1.1] })], build: ([a]) => F.clip(a!, -0.6, 0.9) },
  { op: 'Cast', inputs: [A([2, 3])], build: ([a]) => emit1('Cast', [a!], { to: { i: ONNX_DTYPE[a!.dtype] } }) },
  { op: 'ReduceSum', inputs: [A([2, 3, 4])], build: ([a]) => F.reduceSum(a!, [0, 2]) },
  { op: 'ReduceMean', inputs: [A([2, 3, 4])], build: ([a]) => F.reduceMean(a!, [1], true) },
  { op: 'ReduceMax', inputs: [A([2, 3, 4])], build: ([a]) => F.reduceMax(a!, [-1]) },
  { op: 'Reshape', inputs: [A([2, 3, 4])], build: ([a]) => F.reshape(a!, [4, -1]) },
  { op: 'Transpose', inputs: [A([2, 3, 4])], build: ([a]) => F.transpose(a!, [2, 0, 1]) },
  { op: 'Unsqueeze', inputs: [A([2, 3])], build: ([a]) => F.unsqueeze(a!, [0, 3]) },
  { op: 'Squeeze', inputs: [A([2, 1, 3])], build: ([a]) => F.squeeze(a!, [1]) },
  { op: 'Concat', inputs: [A([2, 3]), B([2, 2])], build: ([a, b]) => F.concat([a!, b!], 1) },
  {
    op: 'Split',
    label: 'one piece unused',
    inputs: [A([2, 6])],
    build: ([a]) => {
      const [p, , r] = F.split(a!, 1, [1, 2, 3]);
      return F.concat([F.mul(p!, 2), r!], 1);
    },
  },
  { op: 'Slice', inputs: [A([3, 5])], build: ([a]) => F.slice(a!, [1, 1], [3, 4], [0, 1]) },
  { op: 'Pad', inputs: [A([2, 3])], build: ([a]) => F.pad(a!, [1, 0, 0, 2]) },
  { op: 'Expand', inputs: [A([3, 1])], build: ([a]) => F.expand(a!, [2, 3, 4]) },
  {
    op: 'Gather',
    label: 'axis 0 with repeated indices',
    inputs: [A([5, 3]), { name: 'i', shape: [2, 2], kind: 'int', values: [0, 3, 3, 1] }],
    build: ([a, i]) => F.gather(a!, i!, 0),
  },
  {
    op: 'Gather',
    label: 'axis 1',
    inputs: [A([2, 4, 3]), { name: 'i', shape: [3], kind: 'int', values: [2, 0, 2] }],
    build: ([a, i]) => F.gather(a!, i!, 1),
  },
  {
    op: 'GatherElements',
    inputs: [A([3, 4]), { name: 'i', shape: [3, 2], kind: 'int', values: [0, 3, 1, 1, 2, 0] }],
    build: ([a, i]) => F.gatherElements(a!, i!, 1),
  },
  { op: 'MatMul', label: 'batched broadcast', inputs: [A([2, 3, 4]), B([4, 5])], build: ([a, b]) => F.matmul(a!, b!) },
  { op: 'MatMul', label: 'batch both', inputs: [A([2, 3, 4]), B([2, 4, 2])], build: ([a, b]) => F.matmul(a!, b!) },
  {
    op: 'FusedMatMul',
    label: 'transB, 2-D weight',
    inputs: [A([2, 3, 4]), B([5, 4])],
    build: ([a, b]) => F.matmulT(a!, b!, { transB: true }),
  },
  {
    op: 'FusedMatMul',
    label: 'transA, alpha',
    inputs: [A([2, 4, 3]), B([2, 4, 5])],
    build: ([a, b]) => F.matmulT(a!, b!, { transA: true, alpha: 0.5 }),
  },
  { op: 'Gemm', inputs: [A([3, 4]), B([5, 4]), { name: 'c', shape: [5] }], build: ([a, b, c]) => F.gemm(a!, b!, c!, { transB: true, alpha: 0.7, beta: 1.3 }) },
  { op: 'Gemm', label: 'transA', inputs: [A([4, 3]), B([4, 5])], build: ([a, b]) => F.gemm(a!, b!, null, { transA: true }) },
  { op: 'Softmax', inputs: [A([2, 5])], build: ([a]) => F.softmax(a!, -1) },
  { op: 'LogSoftmax', inputs: [A([3, 4])], build: ([a]) => F.logSoftmax(a!, 1) },
  {
    op: 'LayerNormalization',
    inputs: [A([2, 3, 6]), { name: 'gamma', shape: [6] }, { name: 'beta', shape: [6] }],
    build: ([a, gm, bt]) => F.layerNorm(a!, gm!, bt!),
  },
  { op: 'Gelu', inputs: [A([2, 3], { lo: -3, hi: 3 })], build: ([a]) => F.gelu(a!) },
  { op: 'QuickGELU', inputs: [A([2, 3], { lo: -3, hi: 3 })], build: ([a]) => F.quickGelu(a!) },
  { op: 'L2Normalize', inputs: [A([3, 4])], build: ([a]) => F.l2Normalize(a!, 1) },
  {
    op: 'CrossEntropy',
    inputs: [A([3, 5], { lo: -2, hi: 2 }), { name: 'labels', shape: [3], kind: 'int', values: [4, 0, 2] }],
    build: ([a, l]) => F.crossEntropy(a!, l!),
  },
  // LoRA's linear layer (models/clip/lora.ts): x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ, batched rows, every input differentiated.
  {
    op: 'LoRALinear',
    label: 'x [2,3,4], W [5,4], rank 2, s = 1.5',
    inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 'w', shape: [5, 4] }, { name: 'b', shape: [5] }, { name: 'la', shape: [2, 4] }, { name: 'lb', shape: [5, 2] }],
    build: ([x, w, b, a, lb]) => loraLinear(x!, w!, b!, a!, lb!, 1.5),
  },
  // With dropout p = 0.5 (lora_dropout.ts): the adapter reads x·m/(1−p), m from the fixed seed and
  // row offset (inputs, not differentiated); this seed keeps 12 of x's 24 elements.
  {
    op: 'LoRALinear',
    label: 'dropout 0.5, seed 12345, row offset 3',
    inputs: [
      { name: 'x', shape: [2, 3, 4] }, { name: 'w', shape: [5, 4] }, { name: 'b', shape: [5] }, { name: 'la', shape: [2, 4] }, { name: 'lb', shape: [5, 2] },
      { name: 'seed', shape: [], kind: 'int', values: [12345] }, { name: 'offset', shape: [], kind: 'int', values: [3] },
    ],
    build: ([x, w, b, a, lb, seed, offset]) => loraLinear(x!, w!, b!, a!, lb!, 1.5, { p: 0.5, seed: seed!, rowOffset: offset!, module: 'transformer.resblocks.0.attn.in_proj' }),
  },
];
