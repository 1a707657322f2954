// Retrieval metrics of any model (a folder, an artifact, name::tag): the texts of the query data
// against the images of the index data, read and labelled the way fit()'s EvaluationCallback reads
// them (eval_data.ts: text–image pairs, or labelled text queries and image index Documents;
// relevance by `finetuner_label`, else a pair's position, so a set matched against itself counts a
// caption's own image as relevant). So `clipfit eval` on an artifact reproduces the metrics fit()
// reported for its last epoch.

import { Document } from '../data/index.js';
import { ConfigError } from '../errors.js';
import { evaluateRetrieval } from '../eval/evaluate.js';
import type { Distance } from '../eval/knn.js';
import { runArtifactFor } from '../runs/model_spec.js';
import { ClipModel } from '../models/clip/clip_model.js';
import type { Device } from '../runtime/session.js';
import type { SkippedRecord } from '../data/source.js';
import { imageFailure, loadEvalSets } from '../eval/eval_data.js';
import type { EvalData, EvalSide } from '../eval/eval_data.js';
import { encode } from './encode.js';
import { getModel, inferenceFromClip } from './get_model.js';
import type { InferenceModel } from './get_model.js';

export interface EvaluateModelOptions {
  /** A model folder, a fit() artifact or name::tag. */
  model: string;
  /** The queries: pairs (their captions) or labelled text Documents — CSV, JSONL, folder,
   * dataset:NAME[@vN], or Documents. */
  queryData: EvalData;
  /** The index: pairs (their images) or labelled image Documents (may be the same as queryData). */
  indexData: EvalData;
  limit?: number;
  distance?: Distance;
  tokenizer?: string;
  /** Use the artifact's exported ONNX towers. */
  isOnnx?: boolean;
  batchSize?: number;
  device?: Device;
  excludeSelf?: boolean;
  /** Skip (and count) bad query and index rows instead of failing. */
  skipBadRows?: boolean;
  /** int8 towers (the artifact's model_int8.onnx with isOnnx, else weights quantized on load). */
  int8?: boolean;
}

export interface ModelEvaluation {
  metrics: Record<string, number>;
  queries: number;
  index: number;
  /** Bad rows skipped (with skipBadRows). */
  skipped: { query: SkippedRecord[]; index: SkippedRecord[] };
}

const DISTANCES: readonly Distance[] = ['cosine', 'euclidean', 'sqeuclidean'];

export async function evaluateModel(o: EvaluateModelOptions): Promise<ModelEvaluation> {
  const limit = o.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1) throw new ConfigError('limit', `must be a positive integer, got ${limit}`);
  const distance = o.distance ?? 'cosine';
  if (!DISTANCES.includes(distance)) throw new ConfigError('distance', `must be one of ${DISTANCES.join(', ')}, got ${JSON.stringify(distance)}`);
  const { query, index } = await loadEvalSets(o.queryData, o.indexData, { skipBadRows: o.skipBadRows });

  let text: InferenceModel;
  let vision: InferenceModel;
  let shared: ClipModel | null = null;
  if (o.isOnnx) {
    text = await getModel(o.model, { selectModel: 'clip-text', isOnnx: true, tokenizer: o.tokenizer, device: o.device, int8: o.int8 });
    vision = await getModel(o.model, { selectModel: 'clip-vision', isOnnx: true, device: o.device, int8: o.int8 });
  } else {
    shared = await ClipModel.load(runArtifactFor(o.model) ?? o.model, { tokenizer: o.tokenizer, device: o.device, int8: o.int8 });
    text = inferenceFromClip(shared, 'clip-text');
    vision = inferenceFromClip(shared, 'clip-vision');
  }
  try {
    const q = await encode(text, query.texts, { batchSize: o.batchSize });
    const x = await encode(vision, imageDocs(index), { batchSize: o.batchSize }).catch(async (err: unknown) => {
      throw await imageFailure(err, index);
    });
    const metrics = evaluateRetrieval({
      queryEmbeddings: q.data,
      queryLabels: query.labels,
      queryIds: query.ids,
      indexEmbeddings: x.data,
      indexLabels: index.labels,
      indexIds: index.ids,
      limit,
      distance,
      excludeSelf: o.excludeSelf ?? false,
      prefix: 'clip-text-to-clip-vision',
    });
    return { metrics, queries: query.docs.length, index: index.docs.length, skipped: { query: query.skipped, index: index.skipped } };
  } finally {
    await text.release();
    await vision.release();
    await shared?.release();
  }
}

/** The index side's images as image Documents for the vision tower (bytes, or a local path). */
const imageDocs = (side: EvalSide): Document[] =>
  side.images.inputs.map((x) => (typeof x === 'string' ? new Document({ uri: x, modality: 'image' }) : new Document({ blob: x, modality: 'image' })));
