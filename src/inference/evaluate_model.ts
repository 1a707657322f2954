// Retrieval metrics of any model (a folder, an artifact, name::tag) on labelled pairs: captions of
// the query data against images of the index data, the way fit()'s EvaluationCallback scores each
// epoch (same labels: `finetuner_label`, else the pair's position, so a set matched against itself
// counts a caption's own image as relevant). So `clipfit eval` on an artifact reproduces the
// metrics fit() reported for its last epoch.

import type { Document } from '../data/index.js';
import { ConfigError } from '../errors.js';
import { evaluateRetrieval } from '../eval/evaluate.js';
import type { Distance } from '../eval/knn.js';
import { ClipModel } from '../models/clip/clip_model.js';
import type { Device } from '../runtime/session.js';
import { labelOf, loadPairs } from '../train/data_source.js';
import { encode } from './encode.js';
import { getModel, inferenceFromClip } from './get_model.js';
import type { InferenceModel } from './get_model.js';

export interface EvaluateModelOptions {
  /** A model folder, a fit() artifact or name::tag. */
  model: string;
  /** Pairs whose captions are the queries: CSV, JSONL, folder or dataset:NAME[@vN]. */
  queryData: string;
  /** Pairs whose images are the index (may be the same as queryData). */
  indexData: string;
  limit?: number;
  distance?: Distance;
  tokenizer?: string;
  /** Use the artifact's exported ONNX towers. */
  isOnnx?: boolean;
  batchSize?: number;
  device?: Device;
  excludeSelf?: boolean;
  /** int8 towers (the artifact's model_int8.onnx with isOnnx, else weights quantized on load). */
  int8?: boolean;
}

export interface ModelEvaluation {
  metrics: Record<string, number>;
  queries: number;
  index: number;
}

const DISTANCES: readonly Distance[] = ['cosine', 'euclidean', 'sqeuclidean'];

export async function evaluateModel(o: EvaluateModelOptions): Promise<ModelEvaluation> {
  const limit = o.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1) throw new ConfigError('limit', `must be a positive integer, got ${limit}`);
  const distance = o.distance ?? 'cosine';
  if (!DISTANCES.includes(distance)) throw new ConfigError('distance', `must be one of ${DISTANCES.join(', ')}, got ${JSON.stringify(distance)}`);
  const query: Document[] = [...(await loadPairs(o.queryData, { field: 'queryData' })).docs];
  const index: Document[] = o.indexData === o.queryData ? query : [...(await loadPairs(o.indexData, { field: 'indexData' })).docs];

  let text: InferenceModel;
  let vision: InferenceModel;
  let shared: ClipModel | null = null;
  if (o.isOnnx) {
    text = await getModel(o.model, { selectModel: 'clip-text', isOnnx: true, tokenizer: o.tokenizer, device: o.device, int8: o.int8 });
    vision = await getModel(o.model, { selectModel: 'clip-vision', isOnnx: true, device: o.device, int8: o.int8 });
  } else {
    shared = await ClipModel.load(o.model, { tokenizer: o.tokenizer, device: o.device, int8: o.int8 });
    text = inferenceFromClip(shared, 'clip-text');
    vision = inferenceFromClip(shared, 'clip-vision');
  }
  try {
    // Pairs: the text tower encodes their captions, the vision tower their images.
    const q = await encode(text, query, { batchSize: o.batchSize });
    const x = await encode(vision, index, { batchSize: o.batchSize });
    const metrics = evaluateRetrieval({
      queryEmbeddings: q.data,
      queryLabels: query.map((d, i) => labelOf(d, `q${i}`)),
      queryIds: query.map((d) => d.id),
      indexEmbeddings: x.data,
      indexLabels: index.map((d, i) => labelOf(d, `q${i}`)),
      indexIds: index.map((d) => d.id),
      limit,
      distance,
      excludeSelf: o.excludeSelf ?? false,
      prefix: 'clip-text-to-clip-vision',
    });
    return { metrics, queries: query.length, index: index.length };
  } finally {
    await text.release();
    await vision.release();
    await shared?.release();
  }
}
