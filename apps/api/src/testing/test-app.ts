import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '@moco/config';
import { createDb, createTestDatabase, type Db, type TestDatabase } from '@moco/db';
import { createRedis, createTrainingQueue, type TrainingQueue } from '@moco/queue';
import { createObjectStore, startTestS3Server, type ObjectStore, type TestS3Server } from '@moco/storage';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { buildApp } from '../app.js';
import { ApiEnv, type ApiConfig } from '../config.js';
import { createKeyRepository } from '../keys/key-repository.js';
import { createKeyService, type CreatedKey } from '../keys/key-service.js';

/** The API over real services: a fresh database, an S3 server, a Redis queue prefix of its own. */
export interface TestApp {
  app: FastifyInstance;
  /** http://127.0.0.1:<port> of the listening app. */
  url: string;
  db: Db;
  queue: TrainingQueue;
  store: ObjectStore;
  s3: TestS3Server;
  config: ApiConfig;
  /** Where uploads are spooled (to check nothing is left there). */
  tempDir: string;
  createKey(project: string, opts?: { admin?: boolean }): Promise<CreatedKey>;
  /** Names of the objects in the bucket under `prefix`. */
  objects(prefix?: string): Promise<string[]>;
  tempFiles(): Promise<string[]>;
  close(): Promise<void>;
}

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const database: TestDatabase = await createTestDatabase();
  const s3 = await startTestS3Server();
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'moco-api-test-'));
  const prefix = `test-api-${randomBytes(4).toString('hex')}`;
  const config = loadConfig(ApiEnv, {
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    STORAGE_KIND: 's3',
    S3_BUCKET: s3.bucket,
    S3_ENDPOINT: s3.endpoint,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    MAX_UPLOAD_BYTES: String(1024 * 1024),
    MAX_DATASET_BYTES: String(4 * 1024 * 1024),
    UPLOAD_TEMP_DIR: tempDir,
    // Suites send thousands of requests from one key and address; a test of the limits sets its own.
    RATE_LIMIT_MAX: '1000000',
    RATE_LIMIT_EXPENSIVE_MAX: '1000000',
    RATE_LIMIT_UNAUTHENTICATED_MAX: '1000000',
    ...env,
  });
  const db = createDb(database.url, { maxConnections: 4 });
  const redis = createRedis(config.REDIS_URL);
  const queue = createTrainingQueue(redis, prefix);
  const store = createObjectStore({ kind: 's3', ...s3 });
  const app = await buildApp({ db, store, queue, config, logger, redis });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const keys = createKeyService(createKeyRepository(db), logger);
  return {
    app,
    url,
    db,
    queue,
    store,
    s3,
    config,
    tempDir,
    createKey: (project, opts = {}) => keys.createKey({ projectName: project, role: opts.admin ? 'admin' : 'member', name: 'test' }),
    async objects(keyPrefix = '') {
      const keysFound: string[] = [];
      for await (const o of store.list(keyPrefix)) keysFound.push(o.key);
      return keysFound;
    },
    tempFiles: () => readdir(tempDir),
    async close() {
      await app.close();
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
      await db.$disconnect();
      await s3.close();
      await database.drop();
      await rm(tempDir, { recursive: true, force: true });
    },
  };
}

/** Starts a TestApp before the file's tests and closes it after them. */
export function useTestApp(env?: Record<string, string>): { current: TestApp } {
  const holder = { current: undefined as unknown as TestApp };
  beforeAll(async () => {
    holder.current = await startTestApp(env);
  });
  afterAll(async () => {
    await holder.current?.close();
  });
  return holder;
}

export const bearer = (key: CreatedKey | string) => ({ authorization: `Bearer ${typeof key === 'string' ? key : key.key}` });

/**
 * Milliseconds until `GET /v1/jobs` with the key answers 401, polled for up to 5 s (then it fails):
 * a key changed by another process or connection is refused once the api_keys notification lands.
 */
export async function msUntilRefused(app: TestApp['app'], key: CreatedKey | string): Promise<number> {
  const changed = performance.now();
  let status: number;
  do status = (await app.inject({ url: '/v1/jobs', headers: bearer(key) })).statusCode;
  while (status !== 401 && performance.now() - changed < 5_000);
  expect(status).toBe(401);
  return performance.now() - changed;
}
