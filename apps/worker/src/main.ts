// The training worker: `npm run worker`. Takes jobs from the `training` queue one at a time and
// trains each in a child process; see training-processor.ts for what happens to a job.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { apiEnv, databaseEnv, loadConfig, logEnv, redisEnv, storageConfigFromEnv, storageEnv, workerEnv } from '@moco/config';
import { createDatabaseIfMissing, createDb, migrate } from '@moco/db';
import { createRedis, createTrainingQueue, TRAINING_QUEUE, type QueuePayloads } from '@moco/queue';
import { createObjectStore } from '@moco/storage';
import { Worker } from 'bullmq';
import { z } from 'zod';
import { createLogger, errorMessage } from './log.js';
import { startReconciler } from './reconciler.js';
import { TrainingProcessor } from './training-processor.js';

const env = loadConfig(
  z.object({
    ...databaseEnv,
    ...redisEnv,
    ...storageEnv,
    ...logEnv,
    ...workerEnv,
    // The limits the API validated datasets with, so a dataset it accepted is read the same way here.
    MAX_DATASET_BYTES: apiEnv.MAX_DATASET_BYTES,
    MAX_DATASET_FILES: apiEnv.MAX_DATASET_FILES,
    MAX_IMAGE_PIXELS: apiEnv.MAX_IMAGE_PIXELS,
  }),
);
const workerId = env.WORKER_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
const log = createLogger(env.LOG_LEVEL, { service: 'worker', worker_id: workerId });

await createDatabaseIfMissing(env.DATABASE_URL);
await migrate(env.DATABASE_URL);
const db = createDb(env.DATABASE_URL, { maxConnections: 4 });
const storage = storageConfigFromEnv(env);
await createObjectStore(storage).check();
const redis = createRedis(env.REDIS_URL);
redis.on('error', (err) => log.warn('redis connection error', { error: errorMessage(err) }));
const queue = createTrainingQueue(redis, env.QUEUE_PREFIX);
queue.on('error', (err) => log.warn('queue error', { error: errorMessage(err) }));

const processor = new TrainingProcessor({
  db,
  log,
  workerId,
  storage,
  cache: { dir: env.WORKER_CACHE_DIR, maxBytes: env.WORKER_CACHE_MAX_BYTES },
  backend: env.TRAIN_BACKEND,
  limits: { maxBytes: env.MAX_DATASET_BYTES, maxFiles: env.MAX_DATASET_FILES, maxPixelsPerImage: env.MAX_IMAGE_PIXELS },
  lockDurationMs: env.WORKER_LOCK_DURATION_MS,
});
const worker = new Worker<QueuePayloads['training']>(TRAINING_QUEUE, processor.process, {
  connection: redis,
  prefix: env.QUEUE_PREFIX,
  concurrency: 1,
  // Shown by getWorkers() (the dashboard's queue page).
  name: workerId,
  lockDuration: env.WORKER_LOCK_DURATION_MS,
  stalledInterval: env.WORKER_STALLED_INTERVAL_MS,
  // Each stall is a worker that died holding the job; Postgres, not this count, decides when a job has failed.
  maxStalledCount: 100,
});
worker.on('error', (err) => log.error('queue worker error', { error: errorMessage(err) }));
const reconciler = startReconciler({ db, queue, log }, env.RECONCILE_INTERVAL_S);
log.info('worker started', { queue_prefix: env.QUEUE_PREFIX, backend: env.TRAIN_BACKEND, storage: storage.kind });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('shutting down: the running job is checkpointed and requeued', { signal });
  try {
    processor.shutdown();
    await reconciler.stop();
    // Waits for the running job, which stops at its next step, then releases the queue connection.
    await worker.close();
    await queue.close();
    await redis.quit();
    await db.$disconnect();
  } catch (err) {
    log.error('shutdown failed', { error: errorMessage(err) });
    process.exit(1);
  }
  log.info('worker stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
