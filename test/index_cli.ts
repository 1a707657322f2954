// `clipfit index …` run in this process: the commands' printed lines (help text included), or the
// error a command throws.

import { Command } from 'commander';
import { registerIndexCommands } from '../src/app/cli/commands_index.js';

export async function indexCli(...args: string[]): Promise<string[]> {
  const out: string[] = [];
  const program = new Command().name('clipfit').exitOverride().configureOutput({ writeOut: (s) => out.push(...s.trimEnd().split('\n')), writeErr: () => {} });
  registerIndexCommands(program, (line) => out.push(...line.split('\n')));
  await program.parseAsync(['node', 'clipfit', ...args]);
  return out;
}
