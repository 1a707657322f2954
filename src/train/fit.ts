// fit(): fine-tune a CLIP on image–text pairs, top to bottom as nanoGPT's loop reads:
// model → data → graph (towers, CLIPLoss, gradients, optimizer update fused into one onnxruntime
// run) → zero-shot evaluation → epochs of steps (schedule, step, clamp the logit scale, report)
// → val_loss, callbacks, checkpoint → final callbacks (best weights, WiSE-FT) → artifact.
// A killed run resumes from its last epoch checkpoint to the same final weights.

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, FitError, FitStoppedError, NonFiniteError } from '../errors.js';
import type { DocumentArray } from '../data/index.js';
import { seededPermutation } from '../data/index.js';
import { ClipModel } from '../models/clip/clip_model.js';
import { buildTrainGraph } from './train_graph.js';
import { makeGradCacheStep, makeTrainStep } from './train_step.js';
import { Session } from '../runtime/session.js';
import type { Tensor } from '../runtime/session.js';
import { callbackFromSpec } from './callbacks.js';
import type { Callback, Logs, TrainContext } from './callbacks.js';
import { loadCheckpoint, writeArtifact, saveCheckpoint } from './fit_state.js';
import type { FitHooks, FitOptions, FitResult } from './fit_types.js';
import { loadPairs } from '../data/source.js';
import { BatchLoader } from './batch_loader.js';
import type { EpochBatches } from './batch_loader.js';
import { ImagePool } from './image_pool.js';
import { makeOptimizer, resolveOptions } from './fit_options.js';
import { paramGroups, trainableFilter } from './param_groups.js';
import { makeSchedule } from './schedule.js';
import { FeatureCache, frozenTowers } from './frozen_features.js';
import { loraStepFeeds, loraTrainable, withLoraOption } from './lora_fit.js';

const LOGIT_SCALE_MAX = Math.log(100);

export async function fit(options: FitOptions, hooks: FitHooks = {}): Promise<FitResult> {
  const t0 = performance.now();
  const timings = { totalS: 0, stepS: 0, dataWaitS: 0, evalS: 0 };
  const timed = async <T>(key: 'stepS' | 'evalS', f: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      return await f();
    } finally {
      timings[key] += (performance.now() - s) / 1000;
    }
  };
  const o = resolveOptions(options);
  const log = (level: 'info' | 'warn' | 'error', msg: string) => hooks.log?.(level, msg);
  const workDir = o.workDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'clipfit-fit-')));
  await fsp.mkdir(workDir, { recursive: true });
  const callbacks: Callback[] = o.callbacks.map((s) => callbackFromSpec(s, { skipBadRows: o.skipBadRows })); // validates (e.g. WiSE-FT α) before any work

  // 1. The model, and a copy of its pretrained weights.
  const model = withLoraOption(await ClipModel.load(o.model, { tokenizer: o.tokenizer, device: o.device }), o);
  const pretrained = model.params.clone();
  const cfg = model.config.model_cfg;
  log('info', `model ${o.model}: ${model.params.size.toLocaleString('en-US')} parameters`);

  // 2. The data.
  const loaded = await loadPairs(o.trainData, { skipBadRows: o.skipBadRows });
  if (loaded.skipped) log('warn', `skipped ${loaded.skipped} bad row(s) of ${o.trainData}`);
  let train: DocumentArray = loaded.docs;
  let val: DocumentArray | null = o.evalData ? (await loadPairs(o.evalData, { field: 'evalData', skipBadRows: o.skipBadRows })).docs : null;
  if (!val && o.valSplit > 0) [train, val] = train.split(o.valSplit, o.seed);
  if (o.batchSize > train.length) throw new ConfigError('batchSize', `${o.batchSize} is larger than the ${train.length} training pairs`);
  const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
  log('info', `${train.length} training pairs, ${val?.length ?? 0} validation pairs, ${stepsPerEpoch} steps per epoch`);

  // 3. The training graph with the optimizer fused in; a loss-only graph for val_loss.
  // A fully frozen tower leaves the step: its features are computed once (FeatureCache) and fed in.
  const trainable = loraTrainable(model) ?? trainableFilter(cfg, o.freeze);
  const frozen = o.reuseFrozenFeatures ? frozenTowers(model.params.entries, trainable) : { image: false, text: false };
  // The step's towers drop the adapters' inputs (lora.dropout); val_loss's never do.
  const towerHooks = { image: model.towerHooks('image', { training: true }), text: model.towerHooks('text', { training: true }) };
  const evalHooks = { image: model.towerHooks('image'), text: model.towerHooks('text') };
  const groups = paramGroups(model.params.entries, trainable, o.learningRate, o.weightDecay, o.optimizerOptions.weightDecayExclude);
  const trainableParameters = model.params.entries.filter((e) => trainable(e.name)).reduce((n, e) => n + e.size, 0);
  if (model.lora) log('info', `LoRA rank ${model.lora.spec.rank} on ${model.lora.spec.targets.join('+')} of the ${model.lora.spec.towers.join(' and ')} tower(s): ${trainableParameters.toLocaleString('en-US')} trainable parameters`);
  const opt = makeOptimizer(o, model.params, groups);
  const runtime = { device: o.device };
  // With GradCache the towers run chunk by chunk and the update follows the summed gradients.
  const trainStep = o.gradCache
    ? await makeGradCacheStep(cfg, opt, model.params, { chunk: o.gradCache.chunk, trainable, labelAware: o.labelAwareLoss, featureInputs: frozen, hooks: towerHooks }, runtime, o.optimizerBackend)
    : await makeTrainStep(cfg, opt, model.params, { trainable, labelAware: o.labelAwareLoss, featureInputs: frozen, hooks: towerHooks }, runtime, o.optimizerBackend);
  if (trainStep.fallback) log('info', `optimizer step in onnxruntime: ${trainStep.fallback}`);
  if (o.gradCache) log('info', `GradCache: the towers run ${o.gradCache.chunk} rows at a time; the loss and the gradient are the batch's`);
  const valGraph = val ? buildTrainGraph(cfg, { trainable: () => false, labelAware: o.labelAwareLoss, hooks: evalHooks }) : null;
  const valSession = valGraph ? await Session.fromGraph(valGraph.graph, runtime) : null;
  const schedule = makeSchedule(o.scheduler, o.learningRate, o.schedulerOptions.stepOn === 'epoch' ? o.epochs : o.epochs * stepsPerEpoch, o.schedulerOptions.warmupSteps ?? 0);
  const pool = new ImagePool(o.numWorkers);
  const loader = new BatchLoader(pool, model, { labelAware: o.labelAwareLoss, cacheBytes: o.pixelCacheMB * 2 ** 20 });
  // An epoch's batches, shuffled by epoch, loaded as many ahead as there are image workers.
  const depth = Math.max(1, o.numWorkers);
  const epochBatches = (epoch: number): EpochBatches => {
    const order = o.shuffle ? seededPermutation(train.length, o.seed + epoch) : train.map((_, i) => i);
    const docs = Array.from({ length: stepsPerEpoch }, (_, k) => order.slice(k * o.batchSize, (k + 1) * o.batchSize).map((i) => train[i]!));
    return loader.epoch(docs, depth, { images: !frozen.image, texts: !frozen.text });
  };
  let features: FeatureCache | null = null;

  const ctx: TrainContext = { model, pretrained, workDir, log, stop: false, frozen };
  const history: { epoch: number; metrics: Record<string, number> }[] = [];
  const report = (epoch: number, metrics: Logs) => {
    history.push({ epoch, metrics });
    hooks.metrics?.(epoch, metrics);
    log('info', `epoch ${epoch}: ${Object.entries(metrics).map(([k, v]) => `${k}=${v.toFixed(4)}`).join(' ')}`);
  };

  let startEpoch = 1;
  let step = 0;
  let stopped = false;
  let epoch = 1;
  try {
    // 4. Resume from the newest checkpoint, or evaluate zero-shot (the first batches decode meanwhile).
    const resumed = await loadCheckpoint(workDir, model.params, opt);
    if (resumed) {
      startEpoch = resumed.epoch + 1;
      history.push(...resumed.history);
      for (const s of resumed.skipped) log('warn', `passed over the damaged checkpoint ${s.dir}: ${s.reason}`);
      log('info', `resumed from the checkpoint of epoch ${resumed.epoch}`);
    }
    const first = startEpoch <= o.epochs ? epochBatches(startEpoch) : null;
    if (!resumed) {
      const zeroShot: Logs = {};
      for (const cb of callbacks) Object.assign(zeroShot, (await timed('evalS', () => cb.onTrainBegin(ctx))) ?? {});
      if (Object.keys(zeroShot).length) report(0, zeroShot);
    }

    if ((frozen.image || frozen.text) && startEpoch <= o.epochs) {
      features = await timed('stepS', () => FeatureCache.build(model, loader, train, frozen, o.batchSize, depth));
      log('info', `${[frozen.image && 'image', frozen.text && 'text'].filter(Boolean).join(' and ')} tower frozen: its features computed once for ${train.length} pairs`);
    }

    // 5. Epochs.
    const started = Date.now();
    step = (startEpoch - 1) * stepsPerEpoch;
    epoch = startEpoch;
    for (; epoch <= o.epochs && !ctx.stop && !stopped; epoch++) {
      if (o.schedulerOptions.stepOn === 'epoch') opt.setLr('all', schedule.lr(epoch - 1));
      const batches = epoch === startEpoch ? first! : epochBatches(epoch);
      let lossSum = 0;
      let k = 0;
      for await (const batch of batches) {
        if (o.schedulerOptions.stepOn !== 'epoch') opt.setLr('all', schedule.lr(step));
        step++;
        let loss: number;
        try {
          const r = await timed('stepS', () => trainStep.run({ ...BatchLoader.feeds(batch), ...features?.feeds(batch.docs), ...loraStepFeeds(model, o.seed, step) }));
          loss = (r.outputs['loss']!.data as Float32Array)[0]!;
        } catch (err) {
          if (err instanceof NonFiniteError) throw new FitError(step, `non-finite gradient (${err.message}); the weights of the last checkpoint are kept`, { cause: err });
          throw err;
        }
        if (!Number.isFinite(loss)) throw new FitError(step, `loss is ${loss}; the weights of the last checkpoint are kept`);
        // open_clip clamps the learned temperature after each step: exp(logit_scale) ≤ 100.
        if (trainable('logit_scale')) {
          const ls = model.params.view('logit_scale');
          ls[0] = Math.min(Math.max(ls[0]!, 0), LOGIT_SCALE_MAX);
        }
        lossSum += loss;
        k++;
        hooks.progress?.({ epoch, epochs: o.epochs, step: k, steps: batches.steps, loss: lossSum / k, stepLoss: loss, elapsedS: (Date.now() - started) / 1000 });
        if (hooks.shouldStop?.()) {
          stopped = true;
          break;
        }
      }
      timings.dataWaitS += batches.waitS;
      if (stopped) break;
      const logs: Logs = { train_loss: lossSum / batches.steps };
      if (val && valSession) logs['val_loss'] = await timed('evalS', () => validationLoss(valSession, model, val!, o.batchSize, loader));
      for (const cb of callbacks) Object.assign(logs, (await timed('evalS', async () => cb.onEpochEnd(ctx, epoch, logs))) ?? {});
      report(epoch, logs);
      await saveCheckpoint(workDir, epoch, model.params, opt, history, o.keepCheckpoints);
    }
  } finally {
    await pool.close();
    await trainStep.release();
    await valSession?.release();
    await opt.dispose();
  }
  const epochsDone = Math.min(epoch - 1, o.epochs);
  if (stopped) {
    await model.release();
    throw new FitStoppedError(epoch, step, epochsDone);
  }

  // 6. Final callbacks (best weights, WiSE-FT), then the artifact.
  for (const cb of callbacks) await cb.onTrainEnd(ctx);
  const artifactDir = await writeArtifact(workDir, model, { options: o, history, epochs: epochsDone, steps: step, toOnnx: o.toOnnx, merge: o.toOnnx || (o.lora?.merge ?? false) });
  await model.release();
  log('info', `artifact saved to ${artifactDir}`);
  timings.totalS = (performance.now() - t0) / 1000;
  return { epochs: epochsDone, steps: step, history, artifactDir, stoppedEarly: ctx.stop, timings, trainableParameters };
}

async function validationLoss(
  session: Session,
  model: ClipModel,
  val: DocumentArray,
  batchSize: number,
  loader: BatchLoader,
): Promise<number> {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < val.length; i += batchSize) {
    const docs = val.slice(i, i + batchSize);
    if (docs.length < 2) break; // a contrastive loss needs at least two pairs
    const b = await loader.load([...docs]);
    const feeds: Record<string, Tensor> = { ...BatchLoader.feeds(b) };
    for (const name of session.inputNames) if (model.params.has(name)) feeds[name] = model.params.tensor(name);
    const out = await session.run(feeds, {}, ['loss']);
    sum += (out['loss']!.data as Float32Array)[0]! * docs.length;
    n += docs.length;
  }
  return n ? sum / n : NaN;
}
