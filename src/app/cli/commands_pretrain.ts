// `clipfit pretrain base`: train the shipped base CLIP from scratch (resumable; see src/app/pretrain/base.ts).

import type { Command } from 'commander';
import { pretrainBase } from '../pretrain/base.js';
import path from 'node:path';
import { buildEmojiDataset } from '../datasets/emoji/index.js';
import { defaultPretrainWork } from '../pretrain/base.js';
import { exportBaseModel, shippedBaseDir } from '../pretrain/export_base.js';
import { evaluateBase, writeModelCard } from '../pretrain/model_card.js';

/** Score the exported model against its own initial weights and write MODEL_CARD.md beside it. */
async function card(work: string, out: string): Promise<string> {
  const emoji = path.join(work, 'emoji-64');
  await buildEmojiDataset({ out: emoji, size: 64 });
  const evals = await evaluateBase(out, path.join(work, 'init'), path.join(work, 'corpus', 'heldout.csv'), emoji);
  return writeModelCard(out, evals);
}

export function registerPretrainCommands(program: Command): void {
  const pre = program.command('pretrain').description("Train clipfit's shipped base model from scratch");
  pre
    .command('base')
    .description('Pretrain ViT-T-8-64 on the icon corpus (a rerun resumes from the last finished epoch), then write the shipped model folder')
    .option('--work <dir>', 'work folder (default $CLIPFIT_HOME/pretrain/ViT-T-8-64-icons)')
    .option('--epochs <n>', 'override the recipe for a trial run', (v) => Number(v))
    .option('--sets <list>', 'comma-separated icon sets, for a trial run')
    .option('--out <dir>', 'where to write the shipped model folder (default models/ViT-T-8-64-icons)')
    .action(async (o: { work?: string; epochs?: number; sets?: string; out?: string }) => {
      const res = await pretrainBase({
        ...(o.work ? { work: o.work } : {}),
        ...(o.epochs ? { epochs: o.epochs } : {}),
        ...(o.sets ? { sets: o.sets.split(',') } : {}),
      });
      const out = await exportBaseModel(res, { ...(o.out ? { out: o.out } : {}), log: (m) => console.log(m) });
      console.log(`model card: ${await card(res.work, out)}`);
      console.log(`shipped model folder: ${out}`);
    });
  pre
    .command('card')
    .description("Re-score the exported base model (held-out icons, emoji sets, against its initial weights) and rewrite its MODEL_CARD.md")
    .option('--work <dir>', 'work folder of the pretraining (default $CLIPFIT_HOME/pretrain/ViT-T-8-64-icons)')
    .option('--out <dir>', 'the exported model folder (default models/ViT-T-8-64-icons)')
    .action(async (o: { work?: string; out?: string }) => {
      console.log(`model card: ${await card(path.resolve(o.work ?? defaultPretrainWork()), path.resolve(o.out ?? shippedBaseDir()))}`);
    });
}
