// `npm run embedder`: the gRPC embedding server (configuration from the environment, see embedderEnv).
import { EmbedderServiceEnv, storageConfigFromEnv } from '@moco/config';
import { createDb } from '@moco/db';
import { createServiceRegistry, onShutdown, startOpsServer, startService } from '@moco/service';
import { createObjectStore } from '@moco/storage';
import { createEmbedderMetrics } from './embedder-metrics.js';
import { startEmbedder } from './server.js';

const { config, log } = startService('embedder', EmbedderServiceEnv, { check: storageConfigFromEnv });
const db = createDb(config.DATABASE_URL);
const store = createObjectStore(storageConfigFromEnv(config));
const registry = createServiceRegistry();
const embedder = await startEmbedder(config, { db, databaseUrl: config.DATABASE_URL, store, log, metrics: createEmbedderMetrics(registry) });
const ops = await startOpsServer({
  host: config.EMBED_OPS_HOST,
  port: config.EMBED_OPS_PORT,
  registry,
  checks: { postgres: () => db.$queryRaw`SELECT 1`, storage: () => store.check() },
  onCheckFailure: (check, err) => log.warn({ err, check }, 'readiness check failed'),
});
if (ops) log.info({ ops_url: ops.url }, 'operations endpoints listening');

// The embedder drains within its own limits (EMBED_DRAIN_DELAY_MS, then EMBED_SHUTDOWN_TIMEOUT_S); this only backs them up.
onShutdown(log, config.EMBED_DRAIN_DELAY_MS + (config.EMBED_SHUTDOWN_TIMEOUT_S + 5) * 1000, async () => {
  await embedder.close();
  await ops?.server.close();
  await db.$disconnect();
});
