// clipfit's public API.

export * from './errors.js';
export type { DType, TypedArray } from './onnx/dtype.js';
export type { Dim, Shape } from './onnx/dims.js';
export { Graph, Value } from './onnx/graph.js';
export type { Attr, Attrs, Node } from './onnx/graph.js';
export { OPSET, encodeModel, toModelProto } from './onnx/encode.js';
export * as ops from './ops/index.js';
export { grad, withGradients } from './autodiff/grad.js';
export { gradCheck } from './autodiff/gradcheck.js';
export type { GradCheckCase, GradCheckResult } from './autodiff/gradcheck.js';
export { Session, defaultThreads } from './runtime/session.js';
export type { Device, SessionOptions, Tensor } from './runtime/session.js';
export { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from './runtime/safetensors.js';
export type { StDType, StFile, StTensor } from './runtime/safetensors.js';
