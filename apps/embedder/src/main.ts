// `npm run embedder`: the gRPC embedding server (configuration from the environment, see embedderEnv).
import { databaseEnv, embedderEnv, loadConfig, logEnv, storageConfigFromEnv, storageEnv } from '@moco/config';
import { createDb } from '@moco/db';
import { createObjectStore } from '@moco/storage';
import { pino } from 'pino';
import { z } from 'zod';
import { startEmbedder } from './server.js';

const config = loadConfig(z.object({ ...databaseEnv, ...storageEnv, ...logEnv, ...embedderEnv }));
const log = pino({ name: 'embedder', level: config.LOG_LEVEL });
const db = createDb(config.DATABASE_URL);
const embedder = await startEmbedder(config, {
  db,
  databaseUrl: config.DATABASE_URL,
  store: createObjectStore(storageConfigFromEnv(config)),
  log,
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'draining');
    void embedder
      .close()
      .then(() => db.$disconnect())
      .then(() => process.exit(0));
  });
}
