import { setImmediate as nextTurn } from 'node:timers/promises';
import { batchCount, batches, type ImageDataset } from '@moco/data';
import {
  learningRate,
  loadTrainingState,
  Moco,
  Rng,
  saveTrainingState,
  tf,
  type AugmentationName,
  type MocoConfig,
  type TrainingProgress,
} from '@moco/moco';
import { batchViews } from './batch-views.js';
import type { EvalTransform } from './features.js';
import { evaluateEncoder } from './evaluation.js';
import { knnAccuracy, type KnnMonitorOptions } from './knn-monitor.js';

/** What a run needs beyond the MoCo config; stored in every checkpoint so a resume needs nothing else. */
export interface RunSettings {
  seed: number;
  augmentation: AugmentationName;
  /** Size, mean and std of the evaluation transform (also what serving must apply). */
  transform: EvalTransform;
}

export interface StepInfo {
  step: number;
  epoch: number;
  batch: number;
  batchesPerEpoch: number;
  loss: number;
  lr: number;
  pretextAccuracy: number;
  featureStd: number;
  /** The step's images, and the seconds it took (augmentation included). */
  images: number;
  seconds: number;
  /** The part of `seconds` spent making the batch's two augmented views. */
  dataSeconds: number;
}

interface EpochSums {
  loss: number;
  images: number;
  seconds: number;
}

export interface EpochInfo {
  epoch: number;
  loss: number;
  lr: number;
  imagesPerSecond: number;
  /** Seconds spent in training steps (augmentation included, kNN monitor excluded). */
  seconds: number;
  knnAccuracy?: number;
  /** With `monitor.probe`: the linear probe's held-out accuracy (see EVALUATION_PROTOCOL). */
  probeAccuracy?: number;
}

/** What the run does after an epoch's report: `checkpoint` saves the state at the epoch's end (e.g. its best evaluation). */
export interface EpochAction {
  checkpoint?: boolean;
}

export interface TrainOptions {
  train: ImageDataset;
  /** Labelled datasets for the kNN monitor at the end of each epoch: `bank` votes for `test`; `probe`: a linear probe on `test` too. */
  monitor?: { bank: ImageDataset; test: ImageDataset; probe?: boolean } & KnnMonitorOptions;
  /** A new run... */
  config?: MocoConfig;
  settings?: RunSettings;
  /** ...or the bytes of a training state to continue. */
  resume?: Uint8Array;
  /** With `resume`: train to this many epochs instead of the state's own (continuing a finished run further). */
  epochs?: number;
  /** Save a training state every this many steps (and when stopped); 0 = only when stopped. */
  checkpointEvery?: number;
  onCheckpoint?: (state: Uint8Array, progress: TrainingProgress) => Promise<void> | void;
  /** Called once with the model before the first step (e.g. to measure the untrained encoder). */
  onStart?: (moco: Moco, progress: TrainingProgress) => Promise<void> | void;
  onStep?: (info: StepInfo) => Promise<void> | void;
  onEpoch?: (info: EpochInfo) => Promise<EpochAction | void> | EpochAction | void;
  /** Stops between steps (the loop yields to the event loop before each): a final checkpoint is saved and the result says `stopped`. */
  signal?: AbortSignal;
}

export interface TrainResult {
  moco: Moco;
  progress: TrainingProgress;
  settings: RunSettings;
  stopped: boolean;
}

/** The order of the images in an epoch: a function of the seed and epoch only, so resumes see it again. */
export function epochOrder(seed: number, epoch: number, n: number): Int32Array {
  return new Rng(`${seed}:epoch:${epoch}`).permutation(n);
}

/**
 * The MoCo training loop: two augmented views of each batch, a MoCo step, the lr schedule per
 * epoch, the kNN monitor, and checkpoints that continue the run exactly (weights, queue, optimizer,
 * RNG, position in the epoch).
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const start = initialState(opts);
  const { moco, settings, rng } = start;
  let { progress } = start;
  const { config } = moco;
  const ds = opts.train;
  checkDataset(ds, config, settings);
  const dropLast = ds.count >= config.batchSize;
  const batchesPerEpoch = batchCount(ds.count, config.batchSize, dropLast);
  const augmentCfg = { pipeline: settings.augmentation, ...settings.transform };

  await opts.onStart?.(moco, progress);
  // The progress last saved (the state it starts from needs no saving): a stop right after a
  // periodic checkpoint, or before the first step, has nothing new to save.
  let saved = progress;
  const checkpoint = async () => {
    const state = await saveTrainingState(moco, progress);
    await opts.onCheckpoint?.(state, progress);
    saved = progress;
  };

  for (let epoch = progress.epoch; epoch < config.epochs; epoch++) {
    const lr = learningRate(config.lr, config.schedule, epoch, config.epochs);
    const order = epochOrder(settings.seed, epoch, ds.count);
    // Sums over the epoch so far; checkpoints carry them so a resumed epoch still reports all of it.
    let sums: EpochSums = (progress.extra?.epochSums as EpochSums | undefined) ?? { loss: 0, images: 0, seconds: 0 };
    for (const batch of batches(ds, { batchSize: config.batchSize, order, dropLast, start: progress.batchInEpoch })) {
      // Steps are synchronous, and awaiting callbacks that settle without I/O never leaves the
      // microtask queue: without a turn of the event loop here, nothing that aborts the signal
      // (a timer, a message from another process) could run until the run is over.
      await nextTurn();
      if (opts.signal?.aborted) {
        if (saved !== progress) await checkpoint();
        return { moco, progress, settings, stopped: true };
      }
      const t0 = performance.now();
      const n = batch.indices.length;
      const views = batchViews(batch, ds, augmentCfg, rng);
      const r = moco.step(views.query, views.key, lr, rng);
      tf.dispose([views.query, views.key]);
      const seconds = (performance.now() - t0) / 1000;
      sums = { loss: sums.loss + r.loss * n, images: sums.images + n, seconds: sums.seconds + seconds };
      progress = {
        step: progress.step + 1,
        epoch,
        batchInEpoch: batch.index + 1,
        rng: rng.state(),
        extra: { ...progress.extra, epochSums: sums },
      };
      await opts.onStep?.({
        step: progress.step,
        epoch,
        batch: batch.index,
        batchesPerEpoch,
        loss: r.loss,
        lr,
        pretextAccuracy: r.pretextAccuracy,
        featureStd: r.featureStd,
        images: n,
        seconds,
        dataSeconds: views.seconds,
      });
      if (opts.checkpointEvery && progress.step % opts.checkpointEvery === 0) await checkpoint();
    }
    const info: EpochInfo = {
      epoch: epoch + 1,
      loss: sums.loss / sums.images,
      lr,
      imagesPerSecond: sums.images / sums.seconds,
      seconds: sums.seconds,
    };
    const { monitor } = opts;
    if (monitor?.probe) {
      const evaluated = await evaluateEncoder(moco.query, monitor, settings.transform, monitor);
      info.knnAccuracy = evaluated.knnAccuracy;
      info.probeAccuracy = evaluated.probeAccuracy;
    } else if (monitor) {
      info.knnAccuracy = await knnAccuracy(moco.query, monitor.bank, monitor.test, settings.transform, monitor);
    }
    progress = { ...progress, epoch: epoch + 1, batchInEpoch: 0, extra: { ...progress.extra, epochSums: undefined } };
    const action = await opts.onEpoch?.(info);
    if (action?.checkpoint && opts.onCheckpoint) await checkpoint();
  }
  // The final state, unless the last epoch's end just saved it.
  if (opts.onCheckpoint && (saved !== progress || progress.step === start.progress.step)) await checkpoint();
  return { moco, progress, settings, stopped: false };
}

function initialState(opts: TrainOptions): { moco: Moco; rng: Rng; progress: TrainingProgress; settings: RunSettings } {
  if (opts.resume) {
    const { moco, rng, progress } = loadTrainingState(opts.resume);
    const settings = progress.extra?.settings as RunSettings | undefined;
    if (!settings) throw new Error('the training state has no run settings (seed, augmentation, transform)');
    if (opts.epochs !== undefined) {
      if (opts.epochs < progress.epoch) throw new Error(`the training state has done ${progress.epoch} epochs, more than ${opts.epochs}`);
      // On the config itself, so the lr schedule and every checkpoint of the longer run use the new length.
      moco.config.epochs = opts.epochs;
    }
    return { moco, rng, progress, settings };
  }
  if (!opts.config || !opts.settings) throw new Error('a new run needs config and settings');
  const rng = new Rng(opts.settings.seed);
  const moco = new Moco(opts.config, rng);
  const progress: TrainingProgress = {
    step: 0,
    epoch: 0,
    batchInEpoch: 0,
    rng: rng.state(),
    extra: { settings: opts.settings },
  };
  return { moco, rng, progress, settings: opts.settings };
}

function checkDataset(ds: ImageDataset, config: MocoConfig, settings: RunSettings): void {
  if (ds.count < 2) throw new Error(`the training set has ${ds.count} image(s); MoCo needs at least 2`);
  if (ds.channels !== config.inChannels) {
    throw new Error(`the dataset has ${ds.channels} channel(s) but the encoder expects ${config.inChannels}`);
  }
  if (settings.transform.mean.length !== ds.channels || settings.transform.std.length !== ds.channels) {
    throw new Error(`mean and std need one value per channel (${ds.channels})`);
  }
}
