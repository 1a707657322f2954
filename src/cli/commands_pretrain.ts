// `clipfit pretrain base`: train the shipped base CLIP from scratch (resumable; see src/pretrain/base.ts).

import type { Command } from 'commander';
import { pretrainBase } from '../pretrain/base.js';
import { exportBaseModel } from '../pretrain/export_base.js';

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
      console.log(`shipped model folder: ${out}`);
    });
}
