// `clipfit fit` (start a run and follow it) and `clipfit artifact` (copy a run's artifact).

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { getRun, startRun } from '../../runs/index.js';
import { DEFAULT_EXPERIMENT } from '../../runs/store.js';
import { FIT_DEFAULTS as D } from '../../train/fit_defaults.js';
import { checkChunk } from '../../train/grad_cache.js';
import type { CallbackSpec, FitOptions, FreezeSpec } from '../../train/fit_types.js';
import { followRun } from './commands_runs.js';
import { addLoraOptions, loraFromFlags } from './lora_flags.js';
import type { LoraFlags } from './lora_flags.js';

type Print = (line: string) => void;

const int = (v: string) => Number.parseInt(v, 10);
const num = (v: string) => Number(v);

function freezeOf(v: string | boolean | undefined): FreezeSpec | undefined {
  if (v === undefined) return undefined;
  if (v === true) return true;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError('--freeze-*', `give nothing (lock the whole tower) or the number of last blocks to keep training, got ${v}`);
  return { allButLast: n };
}

/** 1e-5, not 0.00001. */
const sci = (v: number): string => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v));

/** fit options given as flags under their FitOptions names, as they are. */
const SAME_NAME = ['model', 'trainData', 'evalData', 'valSplit', 'epochs', 'batchSize', 'learningRate', 'optimizer', 'scheduler', 'labelAwareLoss', 'runName'] as const;
const SAME_NAME_LATE = ['device', 'numWorkers', 'toOnnx', 'seed', 'shuffle', 'maxGradNorm', 'skipBadRows', 'tokenizer'] as const;

/** What commander parses: the FitOptions given flag for flag, and the flags that fold into nested
 * options and callbacks or only steer the command. */
type FitFlags = Partial<Pick<FitOptions, (typeof SAME_NAME)[number] | (typeof SAME_NAME_LATE)[number]>> & {
  config?: string;
  betas?: string;
  eps?: number;
  weightDecay?: number;
  weightDecayExclude?: string;
  warmupSteps?: number;
  stepOn?: string;
  freezeImage?: string | boolean;
  freezeText?: string | boolean;
  gradCacheChunk?: number;
  evalQueryData?: string;
  evalIndexData?: string;
  evalLimit?: number;
  wiseFt?: number;
  earlyStopping?: string;
  bestModelCheckpoint?: string;
  checkpointLastK?: number;
  experiment?: string;
  detach?: boolean;
  wait?: boolean;
} & LoraFlags;

/** FitOptions from a JSON config file (if any) overridden by the flags given. */
export async function fitOptionsFromFlags(f: FitFlags): Promise<FitOptions> {
  let base: Partial<FitOptions> = {};
  if (f.config) {
    try {
      base = JSON.parse(await fsp.readFile(f.config, 'utf8'));
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${f.config} as JSON: ${(err as Error).message}`);
    }
  }
  const set = <K extends keyof FitOptions>(k: K, v: FitOptions[K] | undefined) => {
    if (v !== undefined) base[k] = v;
  };
  for (const k of SAME_NAME) set(k, f[k]);
  set('experimentName', f.experiment);
  for (const k of SAME_NAME_LATE) if (k !== 'shuffle') set(k, f[k]);
  // --no-shuffle: commander sets shuffle true unless it is given, so only false is a choice.
  if (f.shuffle === false) base.shuffle = false;
  const oo = { ...(base.optimizerOptions ?? {}) };
  if (f.betas) {
    const b = f.betas.split(',').map(Number);
    if (b.length !== 2 || b.some((x) => !Number.isFinite(x))) throw new ConfigError('--betas', `give two numbers like 0.9,0.98, got ${f.betas}`);
    oo.betas = [b[0]!, b[1]!];
  }
  if (f.eps !== undefined) oo.eps = f.eps;
  if (f.weightDecay !== undefined) oo.weightDecay = f.weightDecay;
  if (f.weightDecayExclude) oo.weightDecayExclude = f.weightDecayExclude === 'default' || f.weightDecayExclude === 'none' ? f.weightDecayExclude : f.weightDecayExclude.split(',');
  base.optimizerOptions = oo;
  const so = { ...(base.schedulerOptions ?? {}) };
  if (f.warmupSteps !== undefined) so.warmupSteps = f.warmupSteps;
  if (f.stepOn) so.stepOn = f.stepOn as 'batch' | 'epoch';
  base.schedulerOptions = so;
  const freeze = { ...(base.freeze ?? {}) };
  if (f.freezeImage !== undefined) freeze.image = freezeOf(f.freezeImage);
  if (f.freezeText !== undefined) freeze.text = freezeOf(f.freezeText);
  base.freeze = freeze;
  // Parsed as a number, not parseInt, so that 2.5 is refused rather than read as 2.
  if (f.gradCacheChunk !== undefined) base.gradCache = { chunk: checkChunk(f.gradCacheChunk, '--grad-cache-chunk') };
  const cbs: CallbackSpec[] = [...(base.callbacks ?? [])];
  if (f.evalQueryData || f.evalIndexData) {
    if (!f.evalQueryData || !f.evalIndexData) throw new ConfigError('--eval-query-data/--eval-index-data', 'give both for an EvaluationCallback');
    cbs.push({ type: 'EvaluationCallback', queryData: f.evalQueryData, indexData: f.evalIndexData, ...(f.evalLimit ? { limit: f.evalLimit } : {}) });
  }
  if (f.earlyStopping) {
    const [monitor, mode, patience] = f.earlyStopping.split(':');
    cbs.push({ type: 'EarlyStopping', monitor: monitor || undefined, mode: (mode || undefined) as 'min' | 'max' | undefined, patience: patience ? Number(patience) : undefined });
  }
  if (f.bestModelCheckpoint) {
    const [monitor, mode] = f.bestModelCheckpoint.split(':');
    cbs.push({ type: 'BestModelCheckpoint', monitor: monitor || undefined, mode: (mode || undefined) as 'min' | 'max' | undefined });
  }
  if (f.checkpointLastK !== undefined) cbs.push({ type: 'TrainingCheckpoint', lastKEpochs: f.checkpointLastK });
  if (f.wiseFt !== undefined) cbs.push({ type: 'WiSEFTCallback', alpha: f.wiseFt });
  base.callbacks = cbs;
  const lora = loraFromFlags(f, base.lora);
  if (lora) base.lora = lora;
  if (!base.trainData) throw new ConfigError('--train-data', 'required (CSV, JSONL, image folder or dataset:NAME), on the command line or in --config');
  return base as FitOptions;
}

export function registerFitCommands(program: Command, print: Print): void {
  addLoraOptions(program.command('fit'))
    .description('Fine-tune a CLIP model as a run that lives on after this command exits; follows its log')
    .option('--config <file.json>', 'fit options as JSON (FitOptions); flags override it')
    .option('--model <model>', `model folder or name::tag (default ${D.model})`)
    .option('--train-data <data>', 'CSV, JSONL, image folder with .txt captions, or dataset:NAME[@vN]')
    .option('--eval-data <data>', 'data for val_loss')
    .option('--val-split <fraction>', 'hold out this fraction of the training data for val_loss', num)
    .option('--epochs <n>', `epochs (default ${D.epochs})`, int)
    .option('--batch-size <n>', `batch size (default ${D.batchSize})`, int)
    .option('--learning-rate <lr>', `learning rate (default ${sci(D.learningRate)})`, num)
    .option('--optimizer <name>', `adamw, adam or sgd (default ${D.optimizer})`)
    .option('--betas <b1,b2>', `Adam betas (default ${D.betas.join(',')})`)
    .option('--eps <eps>', `Adam epsilon (default ${sci(D.eps)})`, num)
    .option('--weight-decay <wd>', `weight decay (default ${D.weightDecay.adamw} for adamw, ${D.weightDecay.adam} otherwise)`, num)
    .option('--weight-decay-exclude <rule>', "'default' (gains, biases, logit_scale), 'none', or comma-separated name parts")
    .option('--scheduler <name>', `constant, linear or cosine (default ${D.scheduler})`)
    .option('--warmup-steps <n>', 'linear warm-up steps', int)
    .option('--step-on <when>', `step the schedule per batch or epoch (default ${D.stepOn})`)
    .option('--label-aware-loss', 'pairs sharing a label in a batch are positives, not false negatives')
    .option('--freeze-image [lastN]', 'lock the image tower (all but its last N blocks when N is given)')
    .option('--freeze-text [lastN]', 'lock the text tower (all but its last N blocks when N is given)')
    .option('--grad-cache-chunk <n>', 'GradCache: run the towers N rows at a time (memory grows with N, not the batch; same gradient)', num)
    .option('--eval-query-data <data>', 'EvaluationCallback: the queries: pairs (their captions) or labelled texts (a text,label CSV, JSONL)')
    .option('--eval-index-data <data>', 'EvaluationCallback: what is searched: pairs (their images) or labelled images (an image,label CSV, JSONL)')
    .option('--eval-limit <n>', `EvaluationCallback: matches per query (default ${D.evalLimit})`, int)
    .option('--wise-ft <alpha>', 'WiSEFTCallback: merge with the pretrained weights at the end', num)
    .option('--early-stopping <monitor:mode:patience>', 'EarlyStopping, e.g. val_loss:min:2')
    .option('--best-model-checkpoint <monitor:mode>', 'BestModelCheckpoint, e.g. val_loss:min')
    .option('--checkpoint-last-k <n>', 'TrainingCheckpoint: keep the last N epoch checkpoints', int)
    .option('--run-name <name>', 'run name (default: generated)')
    .option('--experiment <name>', `experiment (default: ${DEFAULT_EXPERIMENT})`)
    .option('--device <device>', `cpu or cuda (default ${D.device})`)
    .option('--num-workers <n>', 'image-decoding worker threads', int)
    .option('--to-onnx', 'also export clip-text and clip-vision as ONNX in the artifact')
    .option('--seed <n>', `seed (default ${D.seed})`, int)
    .option('--no-shuffle', 'keep the data order')
    .option('--max-grad-norm <n>', 'clip gradients to this global norm', num)
    .option('--skip-bad-rows', 'skip and count bad CSV/JSONL rows instead of failing')
    .option('--tokenizer <path>', 'tokenizer folder or BPE file when the model folder has none')
    .option('--detach', 'start the run and return at once')
    .option('--wait', 'follow the run to its end and exit non-zero when it fails or is canceled')
    .addHelpText(
      'after',
      `
Examples:
  $ clipfit fit --model ./base-model --train-data pairs.csv --epochs 5 --eval-query-data eval.csv --eval-index-data eval.csv
  $ clipfit fit --config fit.json --run-name shoes-v1 --detach
  $ clipfit runs logs shoes-v1 -f        # reattach later
  $ clipfit artifact shoes-v1 --out ./shoes-model`,
    )
    .action(async (flags: FitFlags) => {
      const options = await fitOptionsFromFlags(flags);
      const run = startRun(options, { detach: true });
      print(`started run ${run.name} (experiment ${run.experiment})`);
      if (flags.detach) {
        print(`follow it with: clipfit runs logs ${run.name} -f`);
        return;
      }
      const code = await followRun(run, print, { wait: true, ...(process.stdout.isTTY ? { live: process.stdout } : {}) });
      process.exitCode = flags.wait ? code : 0;
    });

  program
    .command('artifact')
    .description("Copy a finished run's artifact (a model folder, plus ONNX towers when fitted with --to-onnx) to a new folder")
    .argument('<run>', 'run name')
    .requiredOption('--out <dir>', 'destination folder (must not exist)')
    .addHelpText('after', '\nExample:\n  $ clipfit artifact shoes-v1 --out ./shoes-model')
    .action(async (name: string, o: { out: string }) => {
      const out = await getRun(name).saveArtifact(o.out);
      print(`artifact of ${name} written to ${path.relative(process.cwd(), out) || out}`);
    });
}
