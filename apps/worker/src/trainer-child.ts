// The training of one job, in a process of its own (started by trainer-process.ts), so that the
// worker's event loop stays free for BullMQ lock renewals, heartbeats and cancel checks while tfjs
// computes. It does the object-store work (dataset, checkpoints) and reports everything else to the
// worker, which alone writes to Postgres.
import { Hyperparameters, toMocoConfig, type ResolvedHyperparameters } from '@moco/contracts';
import { DatasetError, meanStd } from '@moco/data';
import { checkConfig, initBackend } from '@moco/moco';
import { childProcessLogger } from '@moco/service';
import { createObjectStore } from '@moco/storage';
import { train, type RunSettings, type TrainOptions } from '@moco/trainer';
import { z } from 'zod';
import { readStoredDataset } from './dataset-cache.js';
import { checkpointKey, UserError, type ChildMessage, type DatasetLocation, type ParentMessage, type StartMessage } from './protocol.js';

// Libraries' console output (tfjs's banner) as the worker's JSON log entries, not plain text.
childProcessLogger('worker', 'trainer');

// The worker is gone (even SIGKILLed): nobody can record this run any more, and the job will be
// resumed elsewhere from its newest checkpoint, so stop at once instead of training as an orphan.
process.on('disconnect', () => process.exit(1));

// The worker asks for a stop only once this child reported 'ready' (before that it kills it: nothing to save).
const stop = new AbortController();
process.on('message', (message: ParentMessage) => {
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
  // As in train:local: the un-augmented training images vote for the eval images.
  const monitor = evalSet?.labels && trainSet.labels ? { bank: trainSet, test: evalSet, k: hp.knn_k, t: hp.knn_t } : undefined;
  const from: Partial<TrainOptions> = start.resumeKey
    ? { resume: new Uint8Array(await store.getBytes(start.resumeKey)), epochs: hp.epochs }
    : {
        config: toMocoConfig(hp, start.channels),
        settings: { seed: start.seed, augmentation: hp.augmentation, transform: { size: hp.image_size, ...meanStd(trainSet) } },
      };

  let step = 0;
  let epochs = 0;
  const result = await train({
    train: trainSet,
    ...(monitor ? { monitor } : {}),
    ...from,
    checkpointEvery: start.checkpointEvery,
    signal: stop.signal,
    onStart: (moco, progress) => {
      step = progress.step;
      epochs = moco.config.epochs;
      const { transform } = progress.extra?.settings as RunSettings;
      const c = moco.config;
      return send({
        type: 'ready',
        backend,
        images: trainSet.count,
        evalImages: evalSet?.count ?? null,
        knnMonitor: monitor !== undefined,
        transform: { ...transform, channels: c.inChannels },
        encoder: { arch: c.arch, stem: c.stem, width: c.width, in_channels: c.inChannels, head: c.head, dim: c.dim },
        step,
      });
    },
    onStep: (s) => {
      step = s.step;
      const { loss, lr, pretextAccuracy, featureStd, images, seconds } = s;
      return send({ type: 'step', step, epoch: s.epoch + 1, loss, lr, pretextAccuracy, featureStd, images, seconds });
    },
    onEpoch: (e) =>
      send({
        type: 'epoch',
        step,
        epoch: e.epoch,
        loss: e.loss,
        lr: e.lr,
        imagesPerSecond: e.imagesPerSecond,
        seconds: e.seconds,
        knnAccuracy: e.knnAccuracy ?? null,
      }),
    // The object first: a checkpoint row (written by the worker on this message) never names a missing object.
    onCheckpoint: async (state, progress) => {
      const key = checkpointKey(start.checkpointPrefix, progress.step);
      const bytes = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
      const started = performance.now();
      await store.put(key, bytes, { contentType: 'application/octet-stream', contentLength: bytes.length });
      const seconds = (performance.now() - started) / 1000;
      // A checkpoint taken at an epoch's end (before its report) still belongs to that epoch.
      const epoch = progress.batchInEpoch > 0 ? progress.epoch + 1 : progress.epoch;
      await send({ type: 'checkpoint', step: progress.step, epoch, key, bytes: bytes.length, final: progress.epoch === epochs, seconds });
    },
  });
  result.moco.dispose();
  return { type: 'done', stopped: result.stopped };
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
