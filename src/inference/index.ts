// Inference on fine-tuned artifacts: Finetuner's get_model and encode.

export { InferenceModel, getModel, inferenceFromClip } from './get_model.js';
export { l2NormalizeRows, tokenizeTrimmed } from '../models/clip/embedding_utils.js';
export type { GetModelOptions, Tower } from './get_model.js';
export { encode } from './encode.js';
export type { InferenceEncodeOptions } from './encode.js';
export type { EncodeData } from './inputs.js';
export { evaluateModel } from './evaluate_model.js';
export type { EvaluateModelOptions, ModelEvaluation } from './evaluate_model.js';
