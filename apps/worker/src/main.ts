// The training worker: `npm run worker`. Takes jobs from the `training` queue one at a time and
// trains each in a child process; see training-processor.ts for what happens to a job.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { storageConfigFromEnv, WorkerServiceEnv } from '@moco/config';
import { createDatabaseIfMissing, createDb, migrate } from '@moco/db';
import { createRedis, createTrainingQueue, TRAINING_QUEUE, type QueuePayloads } from '@moco/queue';
import { createServiceRegistry, onShutdown, startOpsServer, startService } from '@moco/service';
import { createObjectStore } from '@moco/storage';
import { Worker } from 'bullmq';
import { sweepCheckpoints } from './checkpoint-sweep.js';
import { sweepDatasetCache } from './dataset-cache.js';
import { errorMessage, workerLogger } from './log.js';
import { startReconciler } from './reconciler.js';
import { TrainingProcessor } from './training-processor.js';
import { createWorkerMetrics } from './worker-metrics.js';

const { config: env, log: serviceLog } = startService('worker', WorkerServiceEnv, { check: storageConfigFromEnv });
const workerId = env.WORKER_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
const log = workerLogger(serviceLog.child({ worker_id: workerId }));

await createDatabaseIfMissing(env.DATABASE_URL);
await migrate(env.DATABASE_URL);
const db = createDb(env.DATABASE_URL, { maxConnections: 4 });
const storage = storageConfigFromEnv(env);
const store = createObjectStore(storage);
await store.check();
// What workers that died left: checkpoint objects no row names, partial puts, partial dataset downloads.
const cache = { dir: env.WORKER_CACHE_DIR, maxBytes: env.WORKER_CACHE_MAX_BYTES };
await sweepDatasetCache(cache);
const swept = await sweepCheckpoints(db, store, env.SWEEP_GRACE_S);
if (swept.orphanObjects.length > 0 || swept.partials > 0) log.info('removed what dead workers left', { ...swept });
const redis = createRedis(env.REDIS_URL);
redis.on('error', (err) => log.warn('redis connection error', { error: errorMessage(err) }));
const queue = createTrainingQueue(redis, env.QUEUE_PREFIX);
queue.on('error', (err) => log.warn('queue error', { error: errorMessage(err) }));

const registry = createServiceRegistry();
const processor = new TrainingProcessor({
  db,
  log,
  workerId,
  storage,
  cache,
  backend: env.TRAIN_BACKEND,
  limits: { maxBytes: env.MAX_DATASET_BYTES, maxFiles: env.MAX_DATASET_FILES, maxPixelsPerImage: env.MAX_IMAGE_PIXELS },
  lockDurationMs: env.WORKER_LOCK_DURATION_MS,
  trainerSilenceMs: env.WORKER_TRAINER_SILENCE_S * 1000,
  metrics: createWorkerMetrics(registry),
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
const ops = await startOpsServer({
  host: env.WORKER_OPS_HOST,
  port: env.WORKER_OPS_PORT,
  registry,
  checks: {
    postgres: () => db.$queryRaw`SELECT 1`,
    redis: () => redis.ping(),
    storage: () => store.check(),
    trainer: () => processor.checkTrainer(),
  },
  onCheckFailure: (check, err) => log.warn('readiness check failed', { check, error: errorMessage(err) }),
});
log.info('worker started', { ops_url: ops?.url ?? null, queue_prefix: env.QUEUE_PREFIX, backend: env.TRAIN_BACKEND, storage: storage.kind });

// The running job stops at its next step, checkpoints and goes back to the queue; the orchestrator's
// grace period (terminationGracePeriodSeconds, stop_grace_period) bounds how long that may take.
onShutdown(serviceLog, false, async () => {
  processor.shutdown();
  await reconciler.stop();
  await ops?.server.close();
  // Waits for the running job, then releases the queue connection.
  await worker.close();
  await queue.close();
  await redis.quit();
  await db.$disconnect();
});
