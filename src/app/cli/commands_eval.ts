// `clipfit eval`: text-to-image retrieval metrics of any model on text–image pairs, or on labelled
// text queries and labelled index images.

import { DEFAULT_MODEL } from '../../models/clip/weights/registry.js';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import type { Distance } from '../../eval/knn.js';
import { evaluateModel } from '../../inference/evaluate_model.js';

type Print = (line: string) => void;

const positiveInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(flag, `must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

export function registerEvalCommands(program: Command, print: Print): void {
  program
    .command('eval')
    .description('Text-to-image retrieval metrics of a model: the texts of --query-data searched against the images of --index-data')
    .option('--model <model>', 'a model folder, a fit() artifact or name::tag', DEFAULT_MODEL)
    .requiredOption('--query-data <data>', 'the queries: text–image pairs (their captions) or labelled texts; CSV/TSV, JSONL, image folder or dataset:NAME[@vN]')
    .requiredOption('--index-data <data>', 'what is searched: pairs (their images) or labelled images (may be the query data)')
    .option('--limit <n>', 'matches per query', positiveInt('--limit'), 20)
    .option('--distance <d>', 'cosine, euclidean or sqeuclidean', 'cosine')
    .option('--tokenizer <path>', 'tokenizer folder or bpe_simple_vocab_16e6.txt.gz when the model folder has none')
    .option('--onnx', "run the artifact's exported ONNX towers (clip-text/model.onnx, clip-vision/model.onnx)")
    .option('--int8', 'int8 towers: the artifact\'s model_int8.onnx with --onnx, else the weights quantized on load')
    .option('--exclude-self', 'do not count an index row with the query’s own id')
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'), 32)
    .option('--device <device>', 'cpu or cuda', 'cpu')
    .option('--skip-bad-rows', 'skip and count bad query and index rows (no label, no image, an image URL or data: URI that is no image) instead of failing')
    .option('--json', 'print the metrics as JSON')
    .addHelpText(
      'after',
      '\nA query is relevant to the index images with its finetuner_label; a pair without one, to its own image.\nLabelled data: a CSV with a header naming a label column (text,label or image,label), JSONL lines\n{"text": …, "label": …} / {"image": …, "label": …}, or Document lines with tags.finetuner_label.\n\nExamples:\n  $ clipfit eval --model ViT-B-32::openai --query-data test.csv --index-data test.csv\n  $ clipfit eval --model runs/shoes/artifact --query-data queries.jsonl --index-data index.jsonl\n  $ clipfit eval --model runs/shoes/artifact --query-data dataset:shoes-test --index-data dataset:shoes-test --json',
    )
    .action(async (o: { model: string; queryData: string; indexData: string; limit: number; distance: string; tokenizer?: string; onnx?: boolean; int8?: boolean; excludeSelf?: boolean; batchSize: number; device: string; skipBadRows?: boolean; json?: boolean }) => {
      if (!['cosine', 'euclidean', 'sqeuclidean'].includes(o.distance)) throw new ConfigError('--distance', `must be cosine, euclidean or sqeuclidean, got ${JSON.stringify(o.distance)}`);
      if (o.device !== 'cpu' && o.device !== 'cuda') throw new ConfigError('--device', `must be cpu or cuda, got ${JSON.stringify(o.device)}`);
      const r = await evaluateModel({
        model: o.model,
        queryData: o.queryData,
        indexData: o.indexData,
        limit: o.limit,
        distance: o.distance as Distance,
        tokenizer: o.tokenizer,
        isOnnx: o.onnx,
        int8: o.int8,
        excludeSelf: o.excludeSelf,
        batchSize: o.batchSize,
        device: o.device,
        skipBadRows: o.skipBadRows,
      });
      // With --json, stdout holds only the metrics; the skipped rows go to stderr.
      const note = o.json ? (line: string) => console.error(line) : print;
      for (const s of [...r.skipped.query, ...r.skipped.index]) note(`skipped ${s.file}, ${s.unit} ${s.row}${s.field ? `, field '${s.field}'` : ''}: ${s.reason}`);
      if (o.json) return print(JSON.stringify(r.metrics, null, 2));
      const skipped = r.skipped.query.length + r.skipped.index.length;
      print(`${o.model}: ${r.queries} caption queries against ${r.index} images (limit ${o.limit}, ${o.distance})` + (skipped ? `; skipped ${skipped} bad row(s)` : ''));
      for (const [k, v] of Object.entries(r.metrics)) print(`${k}: ${v.toFixed(4)}`);
    });
}
