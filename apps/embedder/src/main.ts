// `npm run embedder`: the gRPC embedding server (configuration from the environment, see embedderEnv).
import { EmbedderServiceEnv, loadConfig, storageConfigFromEnv } from '@moco/config';
import { createDb } from '@moco/db';
import { createServiceRegistry, startOpsServer } from '@moco/service';
import { createObjectStore } from '@moco/storage';
import { pino } from 'pino';
import { startEmbedder } from './server.js';

const config = loadConfig(EmbedderServiceEnv);
const log = pino({ name: 'embedder', level: config.LOG_LEVEL });
const db = createDb(config.DATABASE_URL);
const store = createObjectStore(storageConfigFromEnv(config));
const embedder = await startEmbedder(config, { db, databaseUrl: config.DATABASE_URL, store, log });
const ops =
  config.EMBED_OPS_PORT === undefined
    ? null
    : await startOpsServer({
        host: config.EMBED_OPS_HOST,
        port: config.EMBED_OPS_PORT,
        registry: createServiceRegistry(),
        checks: { postgres: () => db.$queryRaw`SELECT 1`, storage: () => store.check() },
        onCheckFailure: (check, err) => log.warn({ err, check }, 'readiness check failed'),
      });
if (ops) log.info({ ops_url: ops.url }, 'operations endpoints listening');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'draining');
    void embedder
      .close()
      .then(() => ops?.server.close())
      .then(() => db.$disconnect())
      .then(() => process.exit(0));
  });
}
