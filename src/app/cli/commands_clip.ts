// `clipfit models` and `clipfit encode`.

import { DEFAULT_MODEL } from '../../models/clip/weights/registry.js';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { writeNpy } from '../../formats/npy.js';
import { ClipModel } from '../../models/clip/clip_model.js';
import { resolveModelSpec } from '../../runs/model_spec.js';
import { describeModels } from '../../models/clip/weights/registry.js';
import { createModelFolder } from '../../models/clip/weights/init.js';
import type { TokenizerFiles } from '../../models/clip/weights/checkpoint.js';

type Print = (line: string) => void;

async function linesOf(file: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(what, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return text.split(/\r?\n/).filter((l) => l.length > 0);
}

export function registerClipCommands(program: Command, print: Print): void {
  program
    .command('models')
    .description('List the model architectures and pretrained tags clipfit knows')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit models\n  $ clipfit models --json')
    .action((opts: { json?: boolean }) => {
      const models = describeModels();
      if (opts.json) return print(JSON.stringify(models, null, 2));
      print(['name', 'embed_dim', 'params', 'image_size', 'context', 'pretrained tags'].join('\t'));
      for (const m of models) {
        const tags = m.pretrained.map((p) => `${p.id} (${p.repo})`).join(', ') || '-';
        print([m.name, m.embed_dim, (m.params / 1e6).toFixed(1) + 'M', m.image_size, m.context_length, tags].join('\t'));
      }
    });

  program
    .command('init')
    .description('Write a model folder with a freshly initialised architecture (OpenAI\'s init), to train from scratch with fit')
    .argument('<architecture>', 'a name from `clipfit models`, e.g. ViT-B-32')
    .requiredOption('--out <dir>', 'model folder to write')
    .requiredOption('--tokenizer <path>', 'bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json + merges.txt')
    .option('--seed <n>', 'seed', (v) => Number.parseInt(v, 10), 0)
    .addHelpText('after', '\nExample:\n  $ clipfit init ViT-B-32 --tokenizer ./vocab --out ./scratch-model --seed 1')
    .action(async (arch: string, o: { out: string; tokenizer: string; seed: number }) => {
      const tok: TokenizerFiles = /\.(gz|txt)$/.test(o.tokenizer)
        ? { kind: 'bpe-gz', file: o.tokenizer }
        : { kind: 'vocab-merges', vocab: path.join(o.tokenizer, 'vocab.json'), merges: path.join(o.tokenizer, 'merges.txt') };
      await createModelFolder(o.out, arch, tok, o.seed);
      print(`wrote a freshly initialised ${arch} to ${o.out}`);
    });

  program
    .command('encode')
    .description('Encode captions or images with a model and write a float32 (n, dim) .npy, in input order')
    .option('--model <model>', 'a model folder (open_clip or Hugging Face layout) or name::tag', DEFAULT_MODEL)
    .option('--text <text...>', 'captions to encode')
    .option('--texts <file>', 'a file with one caption per line')
    .option('--image <path...>', 'image files to encode')
    .option('--images <file>', 'a file with one image path per line')
    .option('--tokenizer <path>', 'tokenizer folder or bpe_simple_vocab_16e6.txt.gz when the model folder has none')
    .option('--batch-size <n>', 'batch size', (v) => Number.parseInt(v, 10), 32)
    .option('--no-normalize', 'keep the raw projected features (default: L2-normalised)')
    .option('--device <device>', 'cpu or cuda', 'cpu')
    .option('--int8', 'encode with int8 towers (weights quantized per channel on load, activations at run time): faster on CPU')
    .requiredOption('--out <file.npy>', 'output .npy file')
    .addHelpText(
      'after',
      '\nExamples:\n  $ clipfit encode --model ./my-model --text "a red dress" "blue jeans" --out q.npy\n  $ clipfit encode --model ViT-B-32::openai --images list.txt --out images.npy',
    )
    .action(async (o: { model: string; text?: string[]; texts?: string; image?: string[]; images?: string; tokenizer?: string; batchSize: number; normalize: boolean; device: 'cpu' | 'cuda'; int8?: boolean; out: string }) => {
      const texts = [...(o.text ?? []), ...(o.texts ? await linesOf(o.texts, '--texts') : [])];
      const images = [...(o.image ?? []), ...(o.images ? await linesOf(o.images, '--images') : [])];
      if (texts.length && images.length) throw new ConfigError('--text/--image', 'encode either captions or images, not both');
      if (!texts.length && !images.length) throw new ConfigError('--text/--image', 'nothing to encode: give --text, --texts, --image or --images');
      if (!(o.batchSize > 0)) throw new ConfigError('--batch-size', `must be a positive integer, got ${o.batchSize}`);
      const model = await ClipModel.load(await resolveModelSpec(o.model), { tokenizer: o.tokenizer, device: o.device, int8: o.int8 });
      const emb = texts.length
        ? await model.encodeTexts(texts, { batchSize: o.batchSize, normalize: o.normalize })
        : await model.encodeImages(images, { batchSize: o.batchSize, normalize: o.normalize });
      await writeNpy(o.out, emb.data, emb.shape);
      await model.release();
      print(`wrote ${o.out}: ${emb.shape[0]} × ${emb.shape[1]} float32${o.normalize ? ', L2-normalised' : ''}${o.int8 ? ' (int8 towers)' : ''}`);
    });
}
