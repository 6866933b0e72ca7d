// The API server: `npm run api`. Configuration comes from the environment (see config.ts).
import { storageConfigFromEnv } from '@moco/config';
import { createDatabaseIfMissing, createDb, migrate } from '@moco/db';
import { createEmbeddingClient } from '@moco/models';
import { createRedis, createTrainingQueue } from '@moco/queue';
import { onShutdown, startService } from '@moco/service';
import { createObjectStore } from '@moco/storage';
import { buildApp } from './app.js';
import { ApiEnv } from './config.js';
import { createDatasetRepository } from './datasets/dataset-repository.js';
import { spoolDir } from './datasets/dataset-service.js';
import { startUploadSweeper, sweepUploadsAtStart, type UploadSweepReport } from './datasets/upload-sweep.js';

const { config, log: logger } = startService('api', ApiEnv, { check: storageConfigFromEnv });

if (await createDatabaseIfMissing(config.DATABASE_URL)) logger.info('created the database');
const applied = await migrate(config.DATABASE_URL);
if (applied.length > 0) logger.info({ applied }, 'applied migrations');

const db = createDb(config.DATABASE_URL);
const redis = createRedis(config.REDIS_URL);
const queue = createTrainingQueue(redis, config.QUEUE_PREFIX);
// While Redis is away jobs still go to Postgres (the worker's reconciler enqueues them): log, don't crash.
queue.on('error', (err) => logger.warn({ err }, 'redis error'));
const store = createObjectStore(storageConfigFromEnv(config));
const embedder = config.EMBEDDER_URL ? createEmbeddingClient(config.EMBEDDER_URL) : null;
// What uploads that died with a previous process left (spool files, pending rows, their objects) goes before any request comes.
const sweep = { repo: createDatasetRepository(db), store, spoolDir: spoolDir(config), graceS: config.SWEEP_GRACE_S };
const logSweep = (report: Partial<UploadSweepReport>) => {
  if (Object.values(report).some((v) => (Array.isArray(v) ? v.length > 0 : v !== 0))) logger.info({ sweep: report }, 'removed what dead uploads left');
};
const sweepFailed = (err: unknown) => logger.warn({ err }, 'upload sweep failed');
// Not fatal: an object store that is down now must not keep the API from starting (/readyz says so).
await sweepUploadsAtStart(sweep).then(logSweep, sweepFailed);
const stopSweeper = startUploadSweeper(sweep, logSweep, sweepFailed);
const app = await buildApp({ db, store, queue, config, logger, embedder, redis });

// Stop accepting, let in-flight requests finish (10 s at most), then close the pools.
onShutdown(logger, 10_000, async () => {
  stopSweeper();
  await app.close();
  embedder?.close();
  await queue.close();
  redis.disconnect();
  await db.$disconnect();
});

await app.listen({ host: config.API_HOST, port: config.API_PORT });
