// `clipfit demo` (the main job) and `clipfit demo-engine` (the autodiff demo on two spirals).

import type { Command } from 'commander';
import { runDemo } from '../demo/run_demo.js';
import { formatMetricTable } from '../demo/report.js';
import { createProgress } from '../../train/progress.js';
import { runEngineDemo } from './demo_engine.js';
import { addLoraOptions, loraFromFlags } from './lora_flags.js';
import type { LoraFlags } from './lora_flags.js';

type Print = (line: string) => void;

export function registerDemoCommands(program: Command, print: Print): void {
  addLoraOptions(program.command('demo'))
    .description('The main job: build the emoji dataset, fine-tune the shipped base CLIP on it, compare zero-shot, fine-tuned and WiSE-FT, and write demo-report/ (a rerun resumes)')
    .option('--work <dir>', 'dataset and checkpoints (default $CLIPFIT_HOME/demo)')
    .option('--report <dir>', 'report folder', 'demo-report')
    .option('--model <model>', 'base model (default the shipped ViT-T-8-64::icons)')
    .option('--epochs <n>', 'fine-tuning epochs', (v) => Number.parseInt(v, 10))
    .option('--batch-size <n>', 'batch size (default the recipe\'s 128)', Number)
    .option('--grad-cache-chunk <n>', 'GradCache: run the towers N rows at a time (memory grows with N, not the batch)', Number)
    .option('--limit <n>', 'use only the first N emoji items (a quick trial)', (v) => Number.parseInt(v, 10))
    .option('--learning-rate <lr>', 'instead of the recipe\'s', Number)
    .option('--freeze-image', 'lock the image tower (its features are computed once)')
    .option('--int8', 'also score the zero-shot and fine-tuned models with int8 towers')
    .addHelpText('after', '\nExample:\n  $ clipfit demo\n  $ open demo-report/index.html')
    .action(async (o: { work?: string; report: string; model?: string; epochs?: number; batchSize?: number; gradCacheChunk?: number; limit?: number; learningRate?: number; freezeImage?: boolean; int8?: boolean } & LoraFlags) => {
      const lora = loraFromFlags(o);
      const bar = createProgress(process.stdout);
      const res = await runDemo({
        report: o.report,
        ...(o.work ? { work: o.work } : {}),
        ...(o.model ? { model: o.model } : {}),
        ...(o.epochs ? { epochs: o.epochs } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
        ...(lora ? { lora } : {}),
        ...(o.learningRate ? { learningRate: o.learningRate } : {}),
        ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
        ...(o.gradCacheChunk !== undefined ? { gradCacheChunk: o.gradCacheChunk } : {}),
        ...(o.freezeImage ? { freezeImage: true } : {}),
        ...(o.int8 ? { int8: true } : {}),
        log: (m) => bar.log('info', m),
        progress: bar.progress,
        metrics: bar.metrics,
      });
      bar.close();
      print('');
      print(formatMetricTable(res.report));
      print('');
      print(`report: ${res.reportDir}/index.html (metrics.json beside it); ${res.wallS.toFixed(0)} s`);
    });

  program
    .command('demo-engine')
    .description('The engine demo: an MLP trained on two spirals by clipfit\'s autodiff and AdamW in onnxruntime')
    .option('--threads <n>', 'CPU threads (default: all cores)', (v) => Number.parseInt(v, 10))
    .action(async (opts: { threads?: number }) => {
      await runEngineDemo({ threads: opts.threads, log: print });
    });
}
