import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveHyperparameters, totalSteps, type CollapseGuard, type EarlyStopping, type HyperparametersInput } from '@moco/contracts';
import { idxArchive, type ImageDataset } from '@moco/data';
import { createDb, createTestDatabase, newId, transitionJob, type Db, type TestDatabase } from '@moco/db';
import { decodeTensors, loadTrainingState, tf } from '@moco/moco';
import { createRedis, createTrainingQueue, enqueueTraining, TRAINING_ATTEMPTS, type TrainingQueue } from '@moco/queue';
import { createObjectStore, startTestS3Server, type ObjectStore, type TestS3Server } from '@moco/storage';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patterns, PATTERN_SIZE as SIZE } from '../support/patterns.js';
import { range, waitFor as waitUntil } from '../support/wait.js';
import { isGone, startWorkerProcess, trainersOf, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';

// The training worker end to end: real worker processes (tsx), real Postgres, Redis and S3
// protocol, a tiny MoCo on the wasm backend. The tests run in order and share workers: each
// starts where the previous one left the system.

const IMAGES = 256;
const SMALL: HyperparametersInput = { width: 4, dim: 16, K: 256, batch_size: 32, bn_splits: 4, image_size: SIZE, knn_k: 20 };
const STEP_METRICS = ['feature_std', 'loss', 'lr', 'pretext_accuracy'];
const BASELINES = ['baseline_random_knn_accuracy', 'baseline_random_probe_accuracy', 'baseline_raw_knn_accuracy', 'baseline_raw_probe_accuracy'];

let pg: TestDatabase;
let db: Db;
let s3: TestS3Server;
let store: ObjectStore;
let redis: Redis;
let queue: TrainingQueue;
let cacheDir: string;
let projectId: string;
let trainSetId: string;
let evalSetId: string;
const prefix = `test-worker-${randomBytes(4).toString('hex')}`;
const workers: WorkerProcess[] = [];

function startWorker(): WorkerProcess {
  const worker = startWorkerProcess({
    ...workerEnvFrom({
      DATABASE_URL: pg.url,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: prefix,
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      S3_REGION: s3.region,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    }),
    WORKER_CACHE_DIR: cacheDir,
    WORKER_LOCK_DURATION_MS: '3000',
    WORKER_STALLED_INTERVAL_MS: '1000',
  });
  workers.push(worker);
  return worker;
}

/** Polls until `probe` answers; a timeout shows the workers' last log lines. */
const waitFor = <T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs?: number) =>
  waitUntil(what, probe, { timeoutMs, context: () => `worker logs:\n${workers.flatMap((w) => w.logs.slice(-15)).join('\n')}` });

const jobRow = (id: string) => db.job.findUniqueOrThrow({ where: { id } });
/** Waits for the job to reach `status`; ending in another final status fails at once. */
const jobIn = (id: string, status: string, timeoutMs?: number) =>
  waitFor(`job ${id} ${status}`, async () => {
    const job = await jobRow(id);
    if (job.status !== status && ['succeeded', 'failed', 'cancelled'].includes(job.status)) {
      throw new Error(`job ${id} ended ${job.status} (${job.errorCode}: ${job.errorMessage}), not ${status}`);
    }
    return job.status === status ? job : null;
  }, timeoutMs);
/** The queue message follows the row: the worker settles it right after the row's final transition. */
const messageIn = (id: string, state: string) =>
  waitFor(`message ${id} ${state}`, async () => {
    const message = await queue.getJob(id);
    return message && (await message.getState()) === state ? message : null;
  });
const firstCheckpoint = (jobId: string) => waitFor(`a checkpoint of ${jobId}`, () => db.checkpoint.findFirst({ where: { jobId } }));
const eventTypes = async (jobId: string) => (await db.jobEvent.findMany({ where: { jobId }, orderBy: { id: 'asc' } })).map((e) => e.type);

async function metricSteps(jobId: string, name: string): Promise<number[]> {
  return (await db.metric.findMany({ where: { jobId, name }, orderBy: { step: 'asc' } })).map((m) => m.step);
}

/** A ready dataset row, as the API leaves one after validating an upload or a registration. */
async function datasetRow(id: string, fields: { name: string; source: string; uri: string; objectKey?: string; imageCount: number }) {
  await db.dataset.create({ data: { id, projectId, status: 'ready', format: 'idx', height: SIZE, width: SIZE, channels: 1, labelled: true, ...fields } });
  return id;
}

/** Uploaded: a tar of the gzipped idx pair in the deployment's store. */
async function uploadedDataset(name: string, ds: ImageDataset): Promise<string> {
  const id = newId('ds');
  const objectKey = `projects/${projectId}/datasets/${id}/${name}.tar`;
  await store.put(objectKey, await idxArchive(ds));
  return datasetRow(id, { name, source: 'upload', objectKey, uri: store.describe(objectKey), imageCount: ds.count });
}

/** Registered: an archive anywhere in S3, named by its s3:// URI. */
async function registeredDataset(name: string, ds: ImageDataset): Promise<string> {
  const key = `external/${name}.tar`;
  await store.put(key, await idxArchive(ds, 't10k'));
  return datasetRow(newId('ds'), { name, source: 's3', uri: `s3://${s3.bucket}/${key}`, imageCount: ds.count });
}

interface JobOptions {
  epochs: number;
  datasetId?: string;
  evalDatasetId?: string;
  enqueue?: boolean;
  hyperparameters?: HyperparametersInput;
  earlyStopping?: EarlyStopping;
  collapse?: CollapseGuard;
}

async function createJob(opts: JobOptions): Promise<string> {
  const { value: hp, problems } = resolveHyperparameters(
    { ...SMALL, ...opts.hyperparameters, epochs: opts.epochs },
    { height: SIZE, width: SIZE, channels: 1, imageCount: IMAGES },
  );
  expect(problems).toEqual([]);
  const id = newId('job');
  await db.job.create({
    data: {
      id,
      projectId,
      datasetId: opts.datasetId ?? trainSetId,
      evalDatasetId: opts.evalDatasetId ?? null,
      hyperparameters: hp,
      seed: 7,
      checkpointEvery: 4,
      totalSteps: totalSteps(hp, IMAGES),
      ...(opts.earlyStopping ? { earlyStopping: opts.earlyStopping } : {}),
      ...(opts.collapse ? { collapse: opts.collapse } : {}),
    },
  });
  if (opts.enqueue !== false) await enqueueTraining(queue, id);
  return id;
}

async function finalWeights(jobId: string): Promise<Map<string, { data: Float32Array }>> {
  const final = await db.checkpoint.findFirstOrThrow({ where: { jobId, final: true } });
  return decodeTensors(new Uint8Array(await store.getBytes(final.objectKey))).values;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  [pg, s3, cacheDir] = await Promise.all([createTestDatabase(), startTestS3Server(), mkdtemp(path.join(tmpdir(), 'worker-cache-'))]);
  db = createDb(pg.url);
  const { endpoint, bucket, region, accessKeyId, secretAccessKey, forcePathStyle } = s3;
  store = createObjectStore({ kind: 's3', endpoint, bucket, region, accessKeyId, secretAccessKey, forcePathStyle });
  redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  queue = createTrainingQueue(redis, prefix);
  projectId = newId('proj');
  await db.project.create({ data: { id: projectId, name: 'worker test' } });
  trainSetId = await uploadedDataset('patterns-train', patterns(IMAGES, 1));
  evalSetId = await registeredDataset('patterns-test', patterns(64, 2));
});

afterAll(async () => {
  for (const w of workers) w.proc.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  await queue?.obliterate({ force: true });
  await queue?.close();
  redis?.disconnect();
  await db?.$disconnect();
  await Promise.all([pg?.drop(), s3?.close(), cacheDir && rm(cacheDir, { recursive: true, force: true })]);
});

describe('training worker', () => {
  let first: WorkerProcess;
  let reference: string;

  it('runs a job to succeeded: every metric step once, epoch metrics, a loadable final checkpoint, events in order', async () => {
    reference = await createJob({ epochs: 2, evalDatasetId: evalSetId });
    first = startWorker();
    const job = await jobIn(reference, 'succeeded');
    expect(job).toMatchObject({ step: 16, epoch: 2, totalSteps: 16, attempts: 1, errorCode: null });
    expect(Object.keys(job.latestMetrics as object).sort()).toEqual(
      [...BASELINES, 'epoch_loss', 'feature_std', 'images_per_s', 'knn_accuracy', 'loss', 'lr', 'pretext_accuracy', 'probe_accuracy'],
    );
    for (const name of STEP_METRICS) expect(await metricSteps(reference, name)).toEqual(range(1, 16));
    for (const name of ['epoch_loss', 'images_per_s', 'knn_accuracy', 'probe_accuracy']) expect(await metricSteps(reference, name)).toEqual([8, 16]);
    for (const name of BASELINES) expect(await metricSteps(reference, name)).toEqual([0]);
    const knn = await db.metric.findMany({ where: { jobId: reference, name: 'knn_accuracy' }, orderBy: { step: 'asc' } });
    expect(knn.map((m) => m.epoch)).toEqual([1, 2]);
    for (const m of knn) expect(m.value).toBeGreaterThan(0.25); // 4 classes: chance is 0.25
    const probe = await db.metric.findMany({ where: { jobId: reference, name: 'probe_accuracy' }, orderBy: { step: 'asc' } });
    for (const m of probe) expect(m.value).toBeGreaterThan(0.25);
    // Raw pixels of these patterns are easy to tell apart: the bar the encoder is measured against.
    expect((job.latestMetrics as Record<string, number>).baseline_raw_knn_accuracy).toBeGreaterThan(0.5);

    const checkpoints = await db.checkpoint.findMany({ where: { jobId: reference }, orderBy: { step: 'asc' } });
    expect(checkpoints.map((c) => [c.step, c.epoch, c.final])).toEqual([[4, 1, false], [8, 1, false], [12, 2, false], [16, 2, true]]);
    const final = checkpoints.at(-1)!;
    expect(final.objectKey).toBe(`projects/${projectId}/jobs/${reference}/checkpoints/step-000000016.mocotens`);
    expect(final.transform).toMatchObject({ size: SIZE, channels: 1, mean: [expect.any(Number)], std: [expect.any(Number)] });
    expect(final.encoder).toEqual({ arch: 'resnet18', stem: 'cifar', width: 4, in_channels: 1, head: 'v1', dim: 16 });
    expect((final.metrics as Record<string, number>).knn_accuracy).toBe(knn[1]!.value);
    const bytes = await store.getBytes(final.objectKey);
    expect(BigInt(bytes.length)).toBe(final.bytes);
    const state = loadTrainingState(new Uint8Array(bytes));
    expect(state.progress).toMatchObject({ step: 16, epoch: 2 });
    state.moco.dispose();

    expect(await eventTypes(reference)).toEqual([
      'started',
      'dataset_loaded',
      'checkpoint_saved',
      'checkpoint_saved',
      'epoch_completed',
      'evaluated',
      'checkpoint_saved',
      'checkpoint_saved',
      'epoch_completed',
      'evaluated',
      'checkpoint_saved',
      'succeeded',
    ]);
    // Each evaluation at a step just checkpointed: the first is the best so far and names that checkpoint.
    const evaluated = await db.jobEvent.findMany({ where: { jobId: reference, type: 'evaluated' }, orderBy: { id: 'asc' } });
    expect(evaluated[0]!.data).toEqual({ step: 8, epoch: 1, checkpoint_id: checkpoints[1]!.id, knn_accuracy: knn[0]!.value, probe_accuracy: probe[0]!.value });
    expect([checkpoints[1]!.id, final.id]).toContain(job.bestCheckpointId);
    const loaded = await db.jobEvent.findFirstOrThrow({ where: { jobId: reference, type: 'dataset_loaded' } });
    expect(loaded.data).toMatchObject({ images: IMAGES, eval_images: 64, knn_monitor: true, backend: { name: 'wasm' }, resumed_from_step: null });
    const message = await messageIn(reference, 'completed');
    expect(message.progress).toEqual({ step: 16, total_steps: 16, epoch: 2 });
  });

  it('measures the baselines once per dataset: a later job on the same data reuses them', async () => {
    const cached = await db.datasetBaseline.findMany({ where: { datasetId: trainSetId } });
    expect(cached).toHaveLength(1);
    const measured = (await jobRow(reference)).latestMetrics as Record<string, number>;
    expect(cached[0]!.values).toEqual({
      raw_knn_accuracy: measured.baseline_raw_knn_accuracy,
      raw_probe_accuracy: measured.baseline_raw_probe_accuracy,
      random_knn_accuracy: measured.baseline_random_knn_accuracy,
      random_probe_accuracy: measured.baseline_random_probe_accuracy,
    });
    // Marked, so that a reuse shows: a job that measured again would record the true figures.
    const marked = { raw_knn_accuracy: 0.125, raw_probe_accuracy: 0.25, random_knn_accuracy: 0.375, random_probe_accuracy: 0.5 };
    await db.datasetBaseline.updateMany({ where: { datasetId: trainSetId }, data: { values: marked } });
    // A patience of 1 with a min_delta no accuracy can beat: the second evaluation stops the job.
    const id = await createJob({ epochs: 5, evalDatasetId: evalSetId, earlyStopping: { metric: 'probe_accuracy', patience: 1, min_delta: 1 } });
    const job = await jobIn(id, 'succeeded');
    const latest = job.latestMetrics as Record<string, number>;
    expect(Object.fromEntries(BASELINES.map((name) => [name.replace('baseline_', ''), latest[name]]))).toEqual(marked);
    expect(await db.datasetBaseline.count({ where: { datasetId: trainSetId } })).toBe(1);

    // Stopped early after epoch 2 of 5; its best checkpoint is the first evaluation's (step 8), which exists.
    expect(job).toMatchObject({ step: 16, epoch: 2, totalSteps: 40 });
    expect(await metricSteps(id, 'probe_accuracy')).toEqual([8, 16]);
    const best = await db.checkpoint.findUniqueOrThrow({ where: { id: job.bestCheckpointId! } });
    expect(best.step).toBe(8);
    expect(await store.head(best.objectKey)).not.toBeNull();
    const types = await eventTypes(id);
    expect(types.slice(-3)).toEqual(['checkpoint_saved', 'early_stopped', 'succeeded']);
    const stopped = await db.jobEvent.findFirstOrThrow({ where: { jobId: id, type: 'early_stopped' } });
    const firstProbe = await db.metric.findFirstOrThrow({ where: { jobId: id, name: 'probe_accuracy', step: 8 } });
    expect(stopped.data).toEqual({
      step: 16,
      epoch: 2,
      metric: 'probe_accuracy',
      best: firstProbe.value,
      best_step: 8,
      best_checkpoint_id: best.id,
      patience: 1,
    });
    expect(stopped.message).toMatch(/probe_accuracy has not improved for 1 evaluation/);
    const succeeded = await db.jobEvent.findFirstOrThrow({ where: { jobId: id, type: 'succeeded' } });
    expect(succeeded.data).toMatchObject({ best_checkpoint_id: best.id });
  });

  it('saves a checkpoint for a best evaluation that falls between periodic checkpoints', async () => {
    // 8 steps an epoch, a checkpoint every 3 steps: the epoch ends (step 8) between checkpoints 6 and 9.
    const id = await createJob({ epochs: 1, evalDatasetId: evalSetId, enqueue: false });
    await db.job.update({ where: { id }, data: { checkpointEvery: 3 } });
    await enqueueTraining(queue, id);
    const job = await jobIn(id, 'succeeded');
    const checkpoints = await db.checkpoint.findMany({ where: { jobId: id }, orderBy: { step: 'asc' } });
    expect(checkpoints.map((c) => [c.step, c.final])).toEqual([[3, false], [6, false], [8, true]]);
    expect(job.bestCheckpointId).toBe(checkpoints[2]!.id);
    const saved = await db.jobEvent.findMany({ where: { jobId: id, type: 'checkpoint_saved' }, orderBy: { id: 'asc' } });
    expect(saved.map((e) => (e.data as { best: boolean }).best)).toEqual([false, false, true]);
    // The evaluation's event follows its checkpoint, which it names.
    expect((await eventTypes(id)).slice(-4)).toEqual(['epoch_completed', 'checkpoint_saved', 'evaluated', 'succeeded']);
  });

  it('aborts a collapsed run (feature_std under the threshold for the given steps) as failed, with a collapsed event', async () => {
    // Normalised features of dim 16 have a std near 1/sqrt(16): never as much as 1.
    const id = await createJob({ epochs: 5, collapse: { min_feature_std: 1, steps: 3 } });
    const job = await jobIn(id, 'failed');
    expect(job.errorCode).toBe('collapsed');
    const std = await db.metric.findFirstOrThrow({ where: { jobId: id, name: 'feature_std', step: 3 } });
    expect(job.errorMessage).toBe(
      `training collapsed: feature_std ${std.value.toPrecision(3)} at step 3, below the threshold 1 for 3 consecutive steps`,
    );
    expect(job.step).toBe(3);
    expect((await eventTypes(id)).slice(-3)).toEqual(['checkpoint_saved', 'collapsed', 'failed']);
    const collapsed = await db.jobEvent.findFirstOrThrow({ where: { jobId: id, type: 'collapsed' } });
    expect(collapsed.data).toEqual({ step: 3, feature_std: std.value, threshold: 1, steps: 3 });
    await messageIn(id, 'failed');
  });

  it('cancels a running job within seconds, keeping a checkpoint of where it stopped', async () => {
    const id = await createJob({ epochs: 20 });
    await firstCheckpoint(id);
    const asked = Date.now();
    await transitionJob(db, id, {
      from: ['running'],
      to: 'cancelling',
      event: { type: 'cancel_requested', message: 'cancel requested' },
      set: { cancelRequestedAt: new Date() },
    });
    const job = await jobIn(id, 'cancelled');
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(job.step).toBeLessThan(160);
    const newest = await db.checkpoint.findFirstOrThrow({ where: { jobId: id }, orderBy: { step: 'desc' } });
    expect(newest).toMatchObject({ step: job.step, final: false });
    expect(await store.head(newest.objectKey)).not.toBeNull();
    expect(await metricSteps(id, 'loss')).toEqual(range(1, job.step));
    expect((await eventTypes(id)).slice(-2)).toEqual(['checkpoint_saved', 'cancelled']);
  });

  it('stops a job that runs past max_runtime_s with a checkpoint, and fails it', async () => {
    const id = await createJob({ epochs: 20 });
    await firstCheckpoint(id);
    // The limit is read live, on every heartbeat: lowering it is the same as running past it.
    await db.job.update({ where: { id }, data: { maxRuntimeS: 1 } });
    const job = await jobIn(id, 'failed');
    expect(job.errorCode).toBe('max_runtime_exceeded');
    const newest = await db.checkpoint.findFirstOrThrow({ where: { jobId: id }, orderBy: { step: 'desc' } });
    expect(newest.step).toBe(job.step);
    await messageIn(id, 'failed');
  });

  it('fails jobs with a garbage dataset or invalid hyperparameters at once, with an error code and no retry', async () => {
    const datasetId = newId('ds');
    const objectKey = `projects/${projectId}/datasets/${datasetId}/garbage.bin`;
    await store.put(objectKey, randomBytes(4096));
    await datasetRow(datasetId, { name: 'garbage', source: 'upload', objectKey, uri: store.describe(objectKey), imageCount: IMAGES });
    const garbage = await createJob({ epochs: 1, datasetId });
    const invalid = await createJob({ epochs: 1 });
    await db.job.update({ where: { id: invalid }, data: { hyperparameters: { K: 'many' } } });
    const [failed, rejected] = await Promise.all([jobIn(garbage, 'failed'), jobIn(invalid, 'failed')]);
    expect(failed).toMatchObject({ errorCode: 'unsupported_format', attempts: 1 });
    expect(failed.errorMessage).toMatch(/garbage\.bin/);
    expect(rejected).toMatchObject({ errorCode: 'invalid_hyperparameters', attempts: 1 });
    expect(rejected.errorMessage).toMatch(/K/);
    for (const id of [garbage, invalid]) {
      expect(await eventTypes(id)).toEqual(['started', 'failed']);
      expect((await messageIn(id, 'failed')).attemptsMade).toBe(1);
    }
  });

  it("resumes a SIGKILLed worker's job on another worker from the newest checkpoint, to the same weights", async () => {
    const id = await createJob({ epochs: 2, evalDatasetId: evalSetId });
    await firstCheckpoint(id);
    const trainers = trainersOf(first.proc.pid!);
    expect(trainers).toHaveLength(1);
    first.proc.kill('SIGKILL');
    await first.exited;
    // The trainer child notices its worker is gone and stops: no orphan keeps training.
    await waitFor('the orphaned trainer to exit', async () => trainers.every(isGone), 10_000);
    const killedAt = await jobRow(id);
    expect(killedAt.status).toBe('running');
    expect(killedAt.step).toBeLessThan(16);

    startWorker();
    const job = await jobIn(id, 'succeeded');
    expect(job).toMatchObject({ step: 16, attempts: 2 });
    for (const name of STEP_METRICS) expect(await metricSteps(id, name)).toEqual(range(1, 16));
    const events = await db.jobEvent.findMany({ where: { jobId: id }, orderBy: { id: 'asc' } });
    expect(events.find((e) => e.type === 'requeued')?.data).toMatchObject({ reason: 'worker_lost' });
    const resumedAt = events.filter((e) => e.type === 'dataset_loaded').map((e) => (e.data as { resumed_from_step: number | null }).resumed_from_step);
    expect(resumedAt[0]).toBeNull();
    expect(resumedAt[1]).toBeGreaterThanOrEqual(4);

    const [resumed, uninterrupted] = await Promise.all([finalWeights(id), finalWeights(reference)]);
    expect([...resumed.keys()]).toEqual([...uninterrupted.keys()]);
    let diff = 0;
    for (const [name, { data }] of resumed) {
      const other = uninterrupted.get(name)!.data;
      for (let i = 0; i < data.length; i++) diff = Math.max(diff, Math.abs(data[i]! - other[i]!));
    }
    expect(diff).toBeLessThanOrEqual(1e-5);
  });

  it('continues early stopping after a resume from the evaluations recorded before it', async () => {
    // No evaluation can gain min_delta 1, so with patience 2 the third evaluation stops the job (step 24)
    // only if the first ones, recorded before the kill, still count after the resume.
    const id = await createJob({ epochs: 6, evalDatasetId: evalSetId, earlyStopping: { metric: 'knn_accuracy', patience: 2, min_delta: 1 } });
    await waitFor('the first evaluation and a later checkpoint', async () => {
      const evaluated = await db.jobEvent.findFirst({ where: { jobId: id, type: 'evaluated' } });
      return evaluated && db.checkpoint.findFirst({ where: { jobId: id, step: { gt: 8 } } });
    });
    const running = workers.at(-1)!;
    running.proc.kill('SIGKILL');
    await running.exited;
    startWorker();
    const job = await jobIn(id, 'succeeded', 180_000);
    expect(job).toMatchObject({ step: 24, epoch: 3, attempts: 2 });
    expect(await metricSteps(id, 'knn_accuracy')).toEqual([8, 16, 24]);
    const best = await db.checkpoint.findUniqueOrThrow({ where: { id: job.bestCheckpointId! } });
    expect(best.step).toBe(8);
    const stopped = await db.jobEvent.findFirstOrThrow({ where: { jobId: id, type: 'early_stopped' } });
    expect(stopped.data).toMatchObject({ step: 24, best_step: 8, best_checkpoint_id: best.id, patience: 2 });
  }, 300_000);

  let requeuedId: string;

  it('on SIGTERM checkpoints the running job, puts it back in the queue without using an attempt, and exits 0', async () => {
    const second = workers.at(-1)!;
    requeuedId = await createJob({ epochs: 4 });
    await firstCheckpoint(requeuedId);
    second.proc.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    const job = await jobRow(requeuedId);
    expect(job).toMatchObject({ status: 'queued', workerId: null, attempts: 1 });
    const newest = await db.checkpoint.findFirstOrThrow({ where: { jobId: requeuedId }, orderBy: { step: 'desc' } });
    expect(newest.step).toBe(job.step);
    const requeued = await db.jobEvent.findFirstOrThrow({ where: { jobId: requeuedId, type: 'requeued' } });
    expect(requeued.data).toMatchObject({ reason: 'shutdown', step: job.step, checkpoint_id: newest.id });
    expect((await messageIn(requeuedId, 'waiting')).attemptsMade).toBe(0);
  });

  it('re-enqueues live jobs whose queue messages were lost, and runs them', async () => {
    await queue.obliterate({ force: true });
    const fresh = await createJob({ epochs: 1, enqueue: false });
    const orphanedCancel = await createJob({ epochs: 1, enqueue: false });
    await db.job.update({ where: { id: orphanedCancel }, data: { status: 'cancelling', workerId: 'gone', attempts: 1 } });
    startWorker();
    expect(await jobIn(orphanedCancel, 'cancelled')).toMatchObject({ attempts: 1 });
    // Two jobs, one after the other, on one worker (each starts a trainer process): more than one job's wait.
    const [resumed, ran] = await Promise.all([jobIn(requeuedId, 'succeeded', 180_000), jobIn(fresh, 'succeeded', 180_000)]);
    expect(resumed).toMatchObject({ step: 32, attempts: 2 });
    expect(await metricSteps(requeuedId, 'loss')).toEqual(range(1, 32));
    const loaded = await db.jobEvent.findMany({ where: { jobId: requeuedId, type: 'dataset_loaded' }, orderBy: { id: 'asc' } });
    expect((loaded[1]!.data as { resumed_from_step: number }).resumed_from_step).toBeGreaterThan(0);
    expect(ran).toMatchObject({ step: 8, attempts: 1 });
  }, 240_000);

  it('takes over a running job from another worker only once its heartbeat is stale', async () => {
    const id = await createJob({ epochs: 1, enqueue: false });
    const beat = new Date();
    await db.job.update({ where: { id }, data: { status: 'running', workerId: 'ghost', heartbeatAt: beat, startedAt: beat, attempts: 1 } });
    await enqueueTraining(queue, id);
    const job = await jobIn(id, 'succeeded');
    expect(job.attempts).toBe(2);
    const requeued = await db.jobEvent.findFirstOrThrow({ where: { jobId: id, type: 'requeued' } });
    expect(requeued.data).toMatchObject({ reason: 'worker_lost', worker_id: 'ghost' });
    // WORKER_LOCK_DURATION_MS is 3000: a fresher heartbeat means the other worker may be alive.
    expect(requeued.createdAt.getTime() - beat.getTime()).toBeGreaterThanOrEqual(3000);
  });

  it('retries infrastructure errors with a retrying event, and fails the last attempt as infrastructure_error', async () => {
    const datasetId = await datasetRow(newId('ds'), { name: 'gone', source: 's3', uri: 's3://no-such-bucket/data.tar', imageCount: IMAGES });
    const retried = await createJob({ epochs: 1, datasetId });
    const event = await waitFor('a retrying event', () => db.jobEvent.findFirst({ where: { jobId: retried, type: 'retrying' } }));
    expect(event.data).toMatchObject({ attempt: 1, max_attempts: TRAINING_ATTEMPTS });
    await messageIn(retried, 'delayed');
    expect(await jobRow(retried)).toMatchObject({ status: 'queued', workerId: null, errorCode: null });

    const last = await createJob({ epochs: 1, datasetId, enqueue: false });
    await queue.add('train', { jobId: last }, { jobId: last, attempts: 1 });
    const job = await jobIn(last, 'failed');
    expect(job.errorCode).toBe('infrastructure_error');
    expect(await eventTypes(last)).toEqual(['started', 'failed']);
  });
});
