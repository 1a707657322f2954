// clipfit's public API.

export * from './errors.js';

// Engine: graph IR, ops, autodiff, runtime.
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

// Optimizers and loss.
export { AdamW, Adam, SGD, Optimizer } from './train/optim.js';
export type { OptimizerOptions, AdamOptions, SgdOptions, ParamGroupOptions, StepResult, OptimizerStateDict } from './train/optim.js';
export { clipLoss } from './train/loss.js';

// CLIP.
export * from './models/clip/config.js';
export { describeModels, registerModel, registerPretrained, parseModelId } from './models/clip/registry.js';
export type { ModelDescription, PretrainedDescription, PretrainedSpec } from './models/clip/registry.js';
export { detectLayout, loadModelFolder, saveModelFolder } from './models/clip/checkpoint.js';
export type { ModelFolder, TokenizerFiles, Weights } from './models/clip/checkpoint.js';
export { resolveModel } from './models/clip/hub.js';
export type { ResolveOptions, DownloadProgress } from './models/clip/hub.js';
export { ClipTokenizer } from './models/clip/tokenizer.js';
export type { TokenizeOptions, TokenizedBatch } from './models/clip/tokenizer.js';
export { decodeImage, preprocessImage, preprocessBatch, toRgbU8, CLIP_MEAN, CLIP_STD } from './models/clip/preprocess.js';
export type { DecodedImage, DecodeOptions, PreprocessOptions, ImageMode } from './models/clip/preprocess.js';
export { imageTower, textTower, clipHead } from './models/clip/model.js';
export { buildImageEncoder, buildTextEncoder } from './models/clip/graphs.js';
export { buildTrainGraph } from './train/train_graph.js';
export { towerOnnx, writeTowerOnnx } from './models/clip/export.js';
export type { TowerName } from './models/clip/export.js';
export { ClipModel } from './models/clip/clip_model.js';
export type { Embeddings, EncodeOptions, LoadOptions } from './models/clip/clip_model.js';

// Data and evaluation.
export * from './data/index.js';
export { evaluateRetrieval, RECALL_CUTOFFS } from './eval/evaluate.js';
export { knn } from './eval/knn.js';
export type { Distance, KnnMatches } from './eval/knn.js';
export * from './eval/metrics.js';

// Fine-tuning.
export { fit } from './train/fit.js';
export type { FitOptions, FitHooks, FitResult, FitTimings, CallbackSpec, FreezeSpec, OptimizerOptionsJson, SchedulerOptionsJson } from './train/fit_types.js';
export { Callback, EvaluationCallback, WiSEFTCallback, EarlyStopping, BestModelCheckpoint, TrainingCheckpoint, wiseFt } from './train/callbacks.js';
export { makeSchedule } from './train/schedule.js';

// Runs.
export * from './runs/index.js';

// Inference on artifacts (Finetuner's get_model / encode) and evaluation of any model.
export { getModel, encode, inferenceFromClip, evaluateModel } from './inference/index.js';
export type { InferenceModel, GetModelOptions, InferenceEncodeOptions, EncodeData, Tower, EvaluateModelOptions, ModelEvaluation } from './inference/index.js';
export { createProgress } from './train/progress.js';

// Datasets built from installed npm packages: the emoji benchmark and the icon pretraining corpus.
export * from './app/datasets/emoji/index.js';
export { buildIconCorpus, iconAttribution } from './app/datasets/icons/corpus.js';
export type { IconCorpus, IconCorpusOptions } from './app/datasets/icons/corpus.js';
export { BASE_ICON_SETS, captionOfIconName, readIconSet, readIconSetInfo } from './app/datasets/icons/iconify.js';
export { pretrainBase, BASE_RECIPE, BASE_ARCHITECTURE, BASE_TAG } from './app/pretrain/base.js';
export { DEFAULT_MODEL } from './models/clip/registry.js';

// Search: vector indexes and the HTTP service.
export * from './search/index.js';
export * from './server/index.js';

// The main job and its report; the base model's pretraining.
export { runDemo, DEMO_RECIPE, DEMO_ALPHAS, DEMO_METRICS } from './app/demo/run_demo.js';
export type { DemoOptions, DemoResult } from './app/demo/run_demo.js';
export { writeDemoReport, formatMetricTable } from './app/demo/report.js';
export type { DemoReport, Hit } from './app/demo/report.js';
export { exportBaseModel } from './app/pretrain/export_base.js';
export { evaluateBase, writeModelCard } from './app/pretrain/model_card.js';
