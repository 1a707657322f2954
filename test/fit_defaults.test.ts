// fit's defaults live in one table (src/train/fit_defaults.ts): what resolveOptions fills in for an
// option left out is the table's value, `clipfit fit --help` prints the same values, and flags
// given on the command line reach FitOptions under their own names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, CommanderError } from 'commander';
import { fitOptionsFromFlags, registerFitCommands } from '../src/app/cli/commands_fit.js';
import { FIT_DEFAULTS } from '../src/train/fit_defaults.js';
import { resolveOptions } from '../src/train/fit_options.js';

async function fitHelp(): Promise<string> {
  const out: string[] = [];
  const program = new Command().name('clipfit').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: () => {} });
  registerFitCommands(program, () => {});
  await assert.rejects(program.parseAsync(['node', 'clipfit', 'fit', '--help']), (e: unknown) => e instanceof CommanderError && e.code === 'commander.helpDisplayed');
  return out.join('').replace(/\s+/g, ' ');
}

test('resolveOptions fills in the defaults table', () => {
  const o = resolveOptions({ trainData: 'pairs.csv' });
  assert.equal(o.model, FIT_DEFAULTS.model);
  assert.equal(o.epochs, FIT_DEFAULTS.epochs);
  assert.equal(o.batchSize, FIT_DEFAULTS.batchSize);
  assert.equal(o.learningRate, FIT_DEFAULTS.learningRate);
  assert.equal(o.optimizer, FIT_DEFAULTS.optimizer);
  assert.deepEqual(o.optimizerOptions.betas, FIT_DEFAULTS.betas);
  assert.equal(o.weightDecay, FIT_DEFAULTS.weightDecay.adamw);
  assert.equal(resolveOptions({ trainData: 'p.csv', optimizer: 'sgd' }).weightDecay, FIT_DEFAULTS.weightDecay.sgd);
  assert.equal(o.scheduler, FIT_DEFAULTS.scheduler);
  assert.equal(o.device, FIT_DEFAULTS.device);
  assert.equal(o.seed, FIT_DEFAULTS.seed);
  assert.equal(o.shuffle, FIT_DEFAULTS.shuffle);
  assert.equal(o.keepCheckpoints, FIT_DEFAULTS.keepCheckpoints);
  assert.equal(o.pixelCacheMB, FIT_DEFAULTS.pixelCacheMB);
  // The values themselves, as fit has always used them (open_clip's fine-tuning recipe).
  assert.deepEqual([o.epochs, o.batchSize, o.learningRate, o.weightDecay, FIT_DEFAULTS.eps, o.seed], [5, 32, 1e-5, 0.2, 1e-6, 42]);
});

test('clipfit fit --help prints the defaults of the table', async () => {
  const help = await fitHelp();
  for (const s of [
    `(default ${FIT_DEFAULTS.model})`,
    `epochs (default ${FIT_DEFAULTS.epochs})`,
    `batch size (default ${FIT_DEFAULTS.batchSize})`,
    'learning rate (default 1e-5)',
    `(default ${FIT_DEFAULTS.optimizer})`,
    `Adam betas (default ${FIT_DEFAULTS.betas.join(',')})`,
    'Adam epsilon (default 1e-6)',
    `weight decay (default ${FIT_DEFAULTS.weightDecay.adamw} for adamw`,
    `(default ${FIT_DEFAULTS.scheduler})`,
    `matches per query (default ${FIT_DEFAULTS.evalLimit})`,
    `seed (default ${FIT_DEFAULTS.seed})`,
  ]) {
    assert.ok(help.includes(s), `help says '${s}'`);
  }
});

test('flags reach FitOptions under their names; --no-shuffle and --experiment are mapped', async () => {
  const o = await fitOptionsFromFlags({ trainData: 'p.csv', epochs: 2, batchSize: 8, learningRate: 3e-5, optimizer: 'sgd', device: 'cpu', seed: 7, shuffle: false, experiment: 'shoes', toOnnx: true });
  assert.equal(o.trainData, 'p.csv');
  assert.deepEqual([o.epochs, o.batchSize, o.learningRate, o.optimizer, o.device, o.seed, o.shuffle, o.experimentName, o.toOnnx], [2, 8, 3e-5, 'sgd', 'cpu', 7, false, 'shoes', true]);
  assert.equal((await fitOptionsFromFlags({ trainData: 'p.csv', shuffle: true })).shuffle, undefined, 'shuffle left to the default');
});
