// The training of one job, in a process of its own (started by trainer-process.ts), so that the
// worker's event loop stays free for BullMQ lock renewals, heartbeats and cancel checks while tfjs
// computes. It does the object-store work (dataset, checkpoints) and reports everything else to the
// worker, which alone writes to Postgres.
import {
  Hyperparameters,
  parseParentMessage,
  toMocoConfig,
  type Baselines,
  type ChildMessage,
  type DatasetLocation,
  type ResolvedHyperparameters,
  type RunEnding,
  type StartMessage,
} from '@moco/contracts';
import { DatasetError, meanStd } from '@moco/data';
import { checkConfig, initBackend, type MocoConfig } from '@moco/moco';
import { childProcessLogger } from '@moco/service';
import { createObjectStore } from '@moco/storage';
import { BestEvaluation, CollapseWatch, measureBaselines, train, type EvaluationSets, type RunSettings, type TrainOptions } from '@moco/trainer';
import { z } from 'zod';
import { readStoredDataset } from './dataset-cache.js';
import { checkpointKey, UserError } from './protocol.js';

// Libraries' console output (tfjs's banner) as the worker's JSON log entries, not plain text.
childProcessLogger('worker', 'trainer');

// The worker is gone (even SIGKILLed): nobody can record this run any more, and the job will be
// resumed elsewhere from its newest checkpoint, so stop at once instead of training as an orphan.
process.on('disconnect', () => process.exit(1));

// The worker asks for a stop only once this child reported 'ready' (before that it kills it: nothing to save).
const stop = new AbortController();
process.on('message', (received: unknown) => {
  let message;
  try {
    message = parseParentMessage(received);
  } catch (err) {
    return void send(failure(err)).finally(() => process.exit(1));
  }
  if (message.type === 'stop') return stop.abort();
  void run(message)
    .catch(failure)
    .then(send)
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
});

/**
 * Resolves once the message is handed to the OS (a synchronous write settles without a turn of the
 * event loop: the training loop yields before each step so that 'stop' and 'disconnect' arrive).
 */
function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, undefined, undefined, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

async function run(start: StartMessage): Promise<ChildMessage> {
  const hp = hyperparameters(start);
  const backend = await initBackend({ prefer: start.backend, log: () => {} });
  const store = createObjectStore(start.storage);
  const options = { imageSize: hp.image_size, channels: start.channels, ...start.limits };
  const read = (location: DatasetLocation) => readStoredDataset(store, start.cache, location, options);
  const trainSet = await read(start.train);
  const evalSet = start.eval ? await read(start.eval) : null;
  // As in train:local: the un-augmented training images vote for the eval images; the probe learns on the eval images.
  const sets: EvaluationSets | null = evalSet?.labels && trainSet.labels ? { bank: trainSet, test: evalSet } : null;
  const knn = { k: hp.knn_k, t: hp.knn_t };
  const monitor = sets ? { ...sets, ...knn, probe: true } : undefined;
  const from: Partial<TrainOptions> = start.resumeKey
    ? { resume: new Uint8Array(await store.getBytes(start.resumeKey)), epochs: hp.epochs }
    : {
        config: toMocoConfig(hp, start.channels),
        settings: { seed: start.seed, augmentation: hp.augmentation, transform: { size: hp.image_size, ...meanStd(trainSet) } },
      };

  // The evaluation that picks the best checkpoint (and may stop the run early), continued from earlier attempts.
  const early = start.earlyStopping;
  const evaluations = new BestEvaluation(early?.min_delta ?? 0, start.evaluations);
  const recorded = new Set(start.evaluations.map((e) => e.step));
  const collapse = start.collapse ? new CollapseWatch(start.collapse.min_feature_std, start.collapse.steps) : null;
  // A stop the run decides itself (early stop, collapse), beside the worker's.
  const own = new AbortController();
  let ending: RunEnding | null = null;
  const end = (why: RunEnding) => {
    ending ??= why;
    own.abort();
  };

  let step = 0;
  let epochs = 0;
  let checkpointStep = -1;
  let bestPending = false;
  const result = await train({
    train: trainSet,
    ...(monitor ? { monitor } : {}),
    ...from,
    checkpointEvery: start.checkpointEvery,
    signal: AbortSignal.any([stop.signal, own.signal]),
    onStart: async (moco, progress) => {
      step = progress.step;
      epochs = moco.config.epochs;
      const { transform } = progress.extra?.settings as RunSettings;
      const c = moco.config;
      await send({
        type: 'ready',
        backend,
        images: trainSet.count,
        evalImages: evalSet?.count ?? null,
        knnMonitor: monitor !== undefined,
        transform: { ...transform, channels: c.inChannels },
        encoder: { arch: c.arch, stem: c.stem, width: c.width, in_channels: c.inChannels, head: c.head, dim: c.dim },
        step,
      });
      if (sets && !start.baselines) await send(await baselines(c, sets, transform, knn));
    },
    onStep: (s) => {
      step = s.step;
      const { loss, lr, pretextAccuracy, featureStd, images, seconds } = s;
      if (collapse?.observe(featureStd)) {
        end({ kind: 'collapsed', step, featureStd, threshold: collapse.threshold, steps: collapse.steps });
      }
      return send({ type: 'step', step, epoch: s.epoch + 1, loss, lr, pretextAccuracy, featureStd, images, seconds });
    },
    onEpoch: async (e) => {
      let evaluation = null;
      // An evaluation an earlier attempt already recorded (the resumed state was saved just before it) is not counted twice.
      if (e.knnAccuracy !== undefined && e.probeAccuracy !== undefined && !recorded.has(step)) {
        const value = early?.metric === 'probe_accuracy' ? e.probeAccuracy : e.knnAccuracy;
        const best = evaluations.observe({ step, value });
        evaluation = { knnAccuracy: e.knnAccuracy, probeAccuracy: e.probeAccuracy, best };
        if (early && evaluations.exhausted(early.patience) && e.epoch < epochs) {
          const { best: top } = evaluations;
          end({ kind: 'early_stopped', step, epoch: e.epoch, metric: early.metric, best: top!.value, bestStep: top!.step, patience: early.patience });
        }
      }
      await send({ type: 'epoch', step, epoch: e.epoch, loss: e.loss, lr: e.lr, imagesPerSecond: e.imagesPerSecond, seconds: e.seconds, evaluation });
      // The best evaluation needs a checkpoint of its own state, unless one was just saved at its step (the worker marks that one).
      bestPending = evaluation?.best === true && checkpointStep !== step;
      return { checkpoint: bestPending };
    },
    // The object first: a checkpoint row (written by the worker on this message) never names a missing object.
    onCheckpoint: async (state, progress) => {
      const key = checkpointKey(start.checkpointPrefix, progress.step);
      const bytes = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
      const started = performance.now();
      await store.put(key, bytes, { contentType: 'application/octet-stream', contentLength: bytes.length });
      const seconds = (performance.now() - started) / 1000;
      // A checkpoint taken at an epoch's end (before its report) still belongs to that epoch.
      const epoch = progress.batchInEpoch > 0 ? progress.epoch + 1 : progress.epoch;
      const best = bestPending;
      bestPending = false;
      checkpointStep = progress.step;
      await send({ type: 'checkpoint', step: progress.step, epoch, key, bytes: bytes.length, final: progress.epoch === epochs, best, seconds });
    },
  });
  result.moco.dispose();
  // A collapse seen in the last steps ends the run as one too, even though no step was left to stop.
  if (!result.stopped) return { type: 'done', ending: ending ?? { kind: 'completed' } };
  // The worker's stop wins: it asked first, or the job was cancelled meanwhile.
  return { type: 'done', ending: stop.signal.aborted || !ending ? { kind: 'stopped' } : ending };
}

/** Raw pixels and a randomly initialised encoder of this shape, evaluated as the job's encoder is. */
async function baselines(config: MocoConfig, sets: EvaluationSets, transform: RunSettings['transform'], knn: { k: number; t: number }): Promise<ChildMessage> {
  const started = performance.now();
  const b = await measureBaselines(config, sets, transform, knn);
  const measured: Baselines = {
    raw_knn_accuracy: b.rawKnnAccuracy,
    raw_probe_accuracy: b.rawProbeAccuracy,
    random_knn_accuracy: b.randomKnnAccuracy,
    random_probe_accuracy: b.randomProbeAccuracy,
  };
  return { type: 'baselines', baselines: measured, evalImages: sets.test.count, seconds: (performance.now() - started) / 1000 };
}

/** The job's hyperparameters, checked again: a bad value is the job's fault, so it fails without retries. */
function hyperparameters(start: StartMessage): ResolvedHyperparameters {
  const parsed = Hyperparameters.safeParse(start.hyperparameters);
  if (!parsed.success) throw new UserError('invalid_hyperparameters', `invalid hyperparameters: ${z.prettifyError(parsed.error)}`);
  const problems = checkConfig(toMocoConfig(parsed.data, start.channels));
  if (problems.length > 0) {
    throw new UserError('invalid_hyperparameters', problems.map((p) => `hyperparameters.${p.field}: ${p.message}`).join('; '));
  }
  return parsed.data;
}

function failure(err: unknown): ChildMessage {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof DatasetError || err instanceof UserError) return { type: 'failed', userError: true, code: err.code, message };
  return { type: 'failed', userError: false, code: 'infrastructure_error', message };
}
