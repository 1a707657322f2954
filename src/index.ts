// clipfit: fine-tune CLIP for text-to-image search. This entry holds what a user of the library
// needs: fit and its callbacks, runs, models (getModel / encode / ClipModel), data and errors.
// The engine (graph IR, ops, autodiff, runtime, the CLIP towers) is `clipfit/engine`; vector
// indexes are `clipfit/search`; the HTTP service is `clipfit/server`.

export * from './errors.js';

// Fine-tuning.
export { fit } from './train/fit.js';
export type { FitOptions, FitHooks, FitResult, FitTimings, CallbackSpec, FreezeSpec, OptimizerOptionsJson, SchedulerOptionsJson } from './train/fit_types.js';
export { Callback, EvaluationCallback, WiSEFTCallback, EarlyStopping, BestModelCheckpoint, TrainingCheckpoint, wiseFt } from './train/callbacks.js';
export { createProgress } from './train/progress.js';

// Runs: fit in a detached worker, with a store of runs, logs, metrics and artifacts.
export * from './runs/index.js';

// Models: by name ('ViT-B-32::openai'), folder or artifact; encode and evaluate.
export { ClipModel } from './models/clip/clip_model.js';
export type { Embeddings, EncodeOptions, LoadOptions } from './models/clip/clip_model.js';
export { DEFAULT_MODEL, describeModels, registerModel, registerPretrained, parseModelId } from './models/clip/weights/registry.js';
export type { ModelDescription, PretrainedDescription, PretrainedSpec } from './models/clip/weights/registry.js';
export { getModel, encode, inferenceFromClip, evaluateModel, InferenceModel } from './inference/index.js';
export type { GetModelOptions, InferenceEncodeOptions, EncodeData, Tower, EvaluateModelOptions, ModelEvaluation } from './inference/index.js';

// Data: Documents, CSV / JSONL / folder loaders, image sources, the local dataset store.
export * from './data/index.js';

// Retrieval metrics, as Finetuner's EvaluationCallback reports them.
export { evaluateRetrieval, RECALL_CUTOFFS } from './eval/evaluate.js';
export * from './eval/metrics.js';
