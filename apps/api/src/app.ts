import { dashboard } from '@moco/dashboard';
import { ApiKeyCache, watchApiKeyChanges, type ApiKeyModel, type Db } from '@moco/db';
import type { createRedis, TrainingQueue } from '@moco/queue';
import type { EmbeddingClient } from '@moco/models';
import { withTimeout } from '@moco/service';
import type { ObjectStore } from '@moco/storage';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { createAdminService } from './admin/admin-service.js';
import { createCheckpointExportService } from './checkpoints/checkpoint-export-service.js';
import type { ApiConfig } from './config.js';
import { createDatasetRepository } from './datasets/dataset-repository.js';
import { createDatasetService } from './datasets/dataset-service.js';
import { createHealthService } from './health/health-service.js';
import { createEventStreams } from './jobs/event-stream.js';
import { createJobRepository } from './jobs/job-repository.js';
import { createJobService } from './jobs/job-service.js';
import { createJobUpdates } from './jobs/job-updates.js';
import { fitsWorkers } from './jobs/worker-memory.js';
import { createKeyRepository } from './keys/key-repository.js';
import { createKeyService } from './keys/key-service.js';
import { createModelService } from './models/model-service.js';
import { requireApiKey } from './plugins/auth.js';
import { answerClientError, answerFrameworkError, answerProtocolRefusals, registerErrorHandling } from './plugins/errors.js';
import { createMetrics, registerMetrics } from './plugins/metrics.js';
import { registerOpenApi } from './plugins/openapi.js';
import { createRateLimits, limitByKey } from './plugins/rate-limit.js';
import { refuseUnstorableText } from './plugins/storable-text.js';
import { echoRequestId, genReqId } from './plugins/request-id.js';
import adminRoutes from './routes/admin/index.js';
import checkpointRoutes from './routes/checkpoints/index.js';
import datasetRoutes from './routes/datasets/index.js';
import healthRoutes from './routes/health/index.js';
import jobRoutes from './routes/jobs/index.js';
import modelRoutes from './routes/models/index.js';

const KEY_LISTENER_START_MS = 2_000;

/** What the API is built from; whoever creates these (main.ts, a test) also closes them. */
export interface AppDeps {
  db: Db;
  store: ObjectStore;
  queue: TrainingQueue;
  config: ApiConfig;
  /** gRPC client of an embedder, for POST /v1/embeddings; null answers 503. */
  embedder?: EmbeddingClient | null;
  /** Where rate limits are counted, shared by every replica; without it each process counts alone. */
  redis?: ReturnType<typeof createRedis>;
}

/**
 * The API as a plugin, and its composition root: every repository and service is created here
 * from the injected dependencies and handed to the routes that use it.
 */
async function mocoApi(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { db, store, queue, config } = deps;
  const metrics = createMetrics();
  const keyCache = new ApiKeyCache<ApiKeyModel>(config.API_KEY_CACHE_S * 1000);
  const keyChanges = watchApiKeyChanges(config.DATABASE_URL, keyCache, app.log);
  const keys = createKeyService(createKeyRepository(db), app.log, keyCache);
  const datasetRepo = createDatasetRepository(db);
  const datasets = createDatasetService({ repo: datasetRepo, store, config });
  const jobRepo = createJobRepository(db);
  const jobs = createJobService({
    repo: jobRepo,
    datasets: datasetRepo,
    queue,
    log: app.log,
    jobsCreated: metrics.jobsCreated,
    fitsWorkers: fitsWorkers(config),
  });
  const updates = createJobUpdates(config.DATABASE_URL, app.log);
  const streams = createEventStreams({ repo: jobRepo, updates });
  const health = createHealthService({ db, queue, store, log: app.log });
  const models = createModelService({ db, embedder: deps.embedder ?? null, embedTimeoutMs: 30_000 });
  app.addHook('preClose', async () => streams.closeAll());
  app.addHook('onClose', () => updates.close());
  app.addHook('onClose', () => keyChanges.close());
  // Serve once the key listener is up (it turns the cache on), or after 2 s without it: until then each request reads its key.
  app.addHook('onReady', () =>
    withTimeout(keyChanges.ready, KEY_LISTENER_START_MS, 'API key change listener').catch((err: unknown) => app.log.warn({ err }, 'serving without the key cache for now')),
  );
  app.addHook('onClose', async () => datasets.close());

  registerErrorHandling(app);
  answerProtocolRefusals(app);
  refuseUnstorableText(app);
  echoRequestId(app);
  registerMetrics(app, metrics);
  await registerOpenApi(app);
  await app.register(healthRoutes, { health });
  await app.register(dashboard, { prefix: '/admin' });
  await app.register(
    async (v1) => {
      const limits = await createRateLimits(v1, { redis: deps.redis, config });
      requireApiKey(v1, keys, limits.unauthenticated);
      limitByKey(v1, limits);
      await v1.register(datasetRoutes, { prefix: '/datasets', datasets });
      await v1.register(jobRoutes, { prefix: '/jobs', jobs, streams });
      await v1.register(checkpointRoutes, { prefix: '/checkpoints', exports: createCheckpointExportService({ db, store }) });
      await v1.register(modelRoutes, { models });
      await v1.register(adminRoutes, { prefix: '/admin', admin: createAdminService({ db, queue }), keys });
    },
    { prefix: '/v1' },
  );
}

export async function buildApp(deps: AppDeps & { logger: FastifyBaseLogger }): Promise<FastifyInstance> {
  const { API_HEADERS_TIMEOUT_MS, API_REQUEST_TIMEOUT_MS } = deps.config;
  const app = Fastify({
    loggerInstance: deps.logger,
    genReqId,
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    requestTimeout: API_REQUEST_TIMEOUT_MS,
    http: {
      // Node refuses a headers timeout above the request timeout.
      headersTimeout: Math.min(API_HEADERS_TIMEOUT_MS, API_REQUEST_TIMEOUT_MS),
      // Node enforces both timeouts only when it sweeps its connections (every 30 s by default).
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(API_HEADERS_TIMEOUT_MS / 4)),
      // Checked by the app instead, so the 400 has the error shape (answerProtocolRefusals).
      requireHostHeader: false,
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fp(mocoApi, { name: 'moco-api' }), deps);
  return app;
}
