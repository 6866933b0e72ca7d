import { embedderEnv, loadConfig } from '@moco/config';
import { startEmbedder, type Embedder } from '@moco/embedder';
import { pino } from 'pino';
import { z } from 'zod';
import type { TestApp } from '../../apps/api/src/testing/test-app.js';

/** An embedder in this process on a free port, serving the test app's database and store (quietly). */
export function startAppEmbedder(app: Pick<TestApp, 'db' | 'store' | 'config'>): Promise<Embedder> {
  return startEmbedder(loadConfig(z.object(embedderEnv), { EMBED_PORT: '0' }), {
    db: app.db,
    databaseUrl: app.config.DATABASE_URL,
    store: app.store,
    log: pino({ level: 'silent' }),
  });
}
