// The shipped base model folder: the pretraining artifact's weights as float16 safetensors in
// open_clip layout (half the bytes; clipfit widens them to float32 on load), its config, the BPE
// vocabulary trained on the corpus, the loss log and a training record the model card is made from.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelFolder, saveModelFolder } from '../../models/clip/weights/checkpoint.js';
import { iconAttribution } from '../datasets/icons/corpus.js';
import { BASE_ARCHITECTURE, BASE_RECIPE, BASE_TAG } from './base.js';
import type { PretrainResult } from './base.js';

/** models/ViT-T-8-64-icons in the package. */
export function shippedBaseDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/app/pretrain or dist/app/pretrain → package root
  return path.resolve(here, '../../../models', `${BASE_ARCHITECTURE}-${BASE_TAG}`);
}

export async function exportBaseModel(res: PretrainResult, opts: { out?: string; log?(m: string): void } = {}): Promise<string> {
  const out = path.resolve(opts.out ?? shippedBaseDir());
  const folder = await loadModelFolder(res.fit.artifactDir);
  await saveModelFolder(out, { ...folder.config, name: BASE_ARCHITECTURE }, folder.weights, 'open_clip', folder.tokenizer, 'F16');
  await fsp.copyFile(path.join(res.work, 'loss.csv'), path.join(out, 'loss.csv'));
  const record = {
    id: `${BASE_ARCHITECTURE}::${BASE_TAG}`,
    command: 'npm run pretrain:base',
    recipe: BASE_RECIPE,
    corpus: { pairs: res.corpus.pairs, captions: res.corpus.captions, skipped: { noCaption: res.corpus.skipped.noCaption, renderFailed: res.corpus.skipped.renderFailed.length }, sets: res.corpus.sets },
    epochs: res.fit.epochs,
    steps: res.fit.steps,
    wallS: Math.round(res.wallS),
    trainS: Math.round(res.fit.timings.totalS),
    pairsPerS: +((res.fit.steps * BASE_RECIPE.batchSize) / res.fit.timings.stepS).toFixed(1),
    history: res.fit.history,
  };
  await fsp.writeFile(path.join(out, 'training.json'), JSON.stringify(record, null, 1));
  await fsp.writeFile(path.join(out, 'ATTRIBUTION.md'), `# Icon sets the base model was trained on\n\n${iconAttribution(res.corpus.sets)}`);
  opts.log?.(`wrote ${out}`);
  return out;
}
