import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb, createTestDatabase, type Db, type TestDatabase } from '@moco/db';
import { createRedis, createTrainingQueue } from '@moco/queue';
import { pino } from 'pino';
import { createKeyRepository } from '../../apps/api/src/keys/key-repository.js';
import { createKeyService, type CreatedKey } from '../../apps/api/src/keys/key-service.js';

/**
 * What real API and worker processes share in a fault test: a fresh database, a Redis queue prefix,
 * and one folder holding the local object store, the API's spool folder and the worker's cache, so
 * that every leftover of a crash is a file the test can see.
 */
export interface LocalStack {
  db: Db;
  root: string;
  objectsDir: string;
  spoolDir: string;
  cacheDir: string;
  /** The variables both processes read. */
  env: Record<string, string>;
  createKey(project: string, opts?: { admin?: boolean }): Promise<CreatedKey>;
  close(): Promise<void>;
}

export async function startLocalStack(env: Record<string, string> = {}): Promise<LocalStack> {
  const database: TestDatabase = await createTestDatabase();
  const root = await mkdtemp(path.join(tmpdir(), 'moco-faults-'));
  const prefix = `test-faults-${randomBytes(4).toString('hex')}`;
  const objectsDir = path.join(root, 'objects');
  const spoolDir = path.join(root, 'spool');
  const cacheDir = path.join(root, 'cache');
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const db = createDb(database.url, { maxConnections: 4 });
  const keys = createKeyService(createKeyRepository(db), pino({ level: 'silent' }));
  return {
    db,
    root,
    objectsDir,
    spoolDir,
    cacheDir,
    env: {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: prefix,
      STORAGE_KIND: 'local',
      STORAGE_ROOT: objectsDir,
      UPLOAD_TEMP_DIR: spoolDir,
      WORKER_CACHE_DIR: cacheDir,
      ...env,
    },
    createKey: (project, opts = {}) => keys.createKey({ projectName: project, role: opts.admin ? 'admin' : 'member', name: 'test' }),
    async close() {
      const redis = createRedis(redisUrl);
      const queue = createTrainingQueue(redis, prefix);
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
      await db.$disconnect();
      await database.drop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
