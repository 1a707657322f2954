// clipfit/engine: the machinery under fit — graph IR and ONNX encoding, the op table, reverse-mode
// autodiff, the onnxruntime session and parameter store, optimizers and CLIPLoss as graphs, and
// CLIP itself (configs, towers, checkpoints, hub, tokenizer, preprocessing, ONNX export).

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
export { ParamStore } from './runtime/params.js';
export type { ParamEntry, ParamShape } from './runtime/params.js';
export { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from './runtime/safetensors.js';
export type { StDType, StFile, StTensor } from './runtime/safetensors.js';
export { npyBytes, parseNpy, writeNpy } from './formats/npy.js';

// Optimizers, schedules and the loss.
export { AdamW, Adam, SGD, Optimizer } from './train/optim.js';
export type { OptimizerOptions, AdamOptions, SgdOptions, ParamGroupOptions, StepResult, OptimizerStateDict } from './train/optim.js';
export { makeSchedule } from './train/schedule.js';
export { clipLoss } from './train/loss.js';
export { buildTrainGraph } from './train/train_graph.js';
export type { TrainGraph, TrainGraphOptions } from './train/train_graph.js';
export { GradCache } from './train/grad_cache.js';
export type { GradCacheOptions } from './train/grad_cache.js';

// CLIP: configs, towers, checkpoints, hub, tokenizer, preprocessing, export.
export * from './models/clip/config.js';
export { detectLayout, loadModelFolder, saveModelFolder } from './models/clip/weights/checkpoint.js';
export type { ModelFolder, TokenizerFiles, Weights } from './models/clip/weights/checkpoint.js';
export { resolveModel } from './models/clip/weights/hub.js';
export type { ResolveOptions, DownloadProgress } from './models/clip/weights/hub.js';
export { ClipTokenizer } from './models/clip/text/tokenizer.js';
export type { TokenizeOptions, TokenizedBatch } from './models/clip/text/tokenizer.js';
export { decodeImage, preprocessImage, preprocessBatch, toRgbU8, CLIP_MEAN, CLIP_STD } from './models/clip/image/preprocess.js';
export type { DecodedImage, DecodeOptions, PreprocessOptions, ImageMode } from './models/clip/image/preprocess.js';
export { imageTower, textTower, clipHead } from './models/clip/model.js';
export { buildImageEncoder, buildTextEncoder } from './models/clip/graphs.js';
export type { EncoderGraph } from './models/clip/graphs.js';
export { towerFile, towerOnnx, writeTowerOnnx } from './models/clip/export.js';
export type { TowerExportOptions, TowerName } from './models/clip/export.js';
export { dequantizeRows, int8Hooks, quantizeRows } from './models/clip/quantize.js';
export { knn } from './eval/knn.js';
export type { Distance, KnnMatches } from './eval/knn.js';
