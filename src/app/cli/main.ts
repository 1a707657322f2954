#!/usr/bin/env node
// The clipfit command line. Only the CLI and the server do user I/O.

import { Command, CommanderError } from 'commander';
import { ClipfitError } from '../../errors.js';
import { registerClipCommands } from './commands_clip.js';
import { registerDataCommands } from './commands_data.js';
import { registerEvalCommands } from './commands_eval.js';
import { registerFitCommands } from './commands_fit.js';
import { registerRunCommands } from './commands_runs.js';
import { registerPretrainCommands } from './commands_pretrain.js';
import { registerServeCommand } from './commands_serve.js';
import { registerIndexCommands } from './commands_index.js';
import { registerDemoCommands } from './commands_demo.js';

const program = new Command();
program
  .name('clipfit')
  .description('Fine-tune CLIP models for text-to-image search, locally, from TypeScript.')
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

const print = (line: string) => console.log(line);
registerDemoCommands(program, print);
registerClipCommands(program, print);
registerFitCommands(program, print);
registerRunCommands(program, print);
registerDataCommands(program, print);
registerEvalCommands(program, print);
registerPretrainCommands(program);
registerServeCommand(program, print);
registerIndexCommands(program, print);

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
