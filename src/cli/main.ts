#!/usr/bin/env node
// The clipfit command line. Only the CLI and the server do user I/O.

import { Command, CommanderError } from 'commander';
import { ClipfitError } from '../errors.js';
import { registerClipCommands } from './commands_clip.js';
import { registerDataCommands } from './commands_data.js';
import { registerEvalCommands } from './commands_eval.js';
import { registerFitCommands } from './commands_fit.js';
import { registerRunCommands } from './commands_runs.js';
import { registerPretrainCommands } from './commands_pretrain.js';
import { runEngineDemo } from './demo_engine.js';

const program = new Command();
program
  .name('clipfit')
  .description('Fine-tune CLIP models for text-to-image search, locally, from TypeScript.')
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

program
  .command('demo')
  .description('Run the main demo (for now: the engine demo, an MLP trained on two spirals by our autodiff in onnxruntime)')
  .option('--threads <n>', 'CPU threads (default: all cores)', (v) => Number.parseInt(v, 10))
  .addHelpText('after', '\nExample:\n  $ clipfit demo')
  .action(async (opts: { threads?: number }) => {
    await runEngineDemo({ threads: opts.threads, log: (line: string) => console.log(line) });
  });

const print = (line: string) => console.log(line);
registerClipCommands(program, print);
registerFitCommands(program, print);
registerRunCommands(program, print);
registerDataCommands(program, print);
registerEvalCommands(program, print);
registerPretrainCommands(program);

async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof ClipfitError) {
      console.error(`clipfit: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

await main(process.argv);
