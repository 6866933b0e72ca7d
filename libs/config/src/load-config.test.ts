import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, databaseEnv, loadConfig, redisEnv, storageConfigFromEnv, storageEnv } from './index.js';

const schema = z.object({ ...databaseEnv, ...redisEnv, ...storageEnv });

describe('loadConfig', () => {
  it('applies defaults and treats empty strings as unset', () => {
    const cfg = loadConfig(schema, { DATABASE_URL: '', S3_FORCE_PATH_STYLE: 'true' });
    expect(cfg.DATABASE_URL).toBe('postgresql://root@127.0.0.1:5432/moco');
    expect(cfg.STORAGE_KIND).toBe('local');
    expect(cfg.S3_FORCE_PATH_STYLE).toBe(true);
  });

  it('names every bad variable in one error', () => {
    const run = () => loadConfig(schema, { DATABASE_URL: 'mysql://x', REDIS_URL: 'http://x', STORAGE_KIND: 'gcs' });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/DATABASE_URL: must be a postgresql:\/\/ URL/);
    expect(run).toThrow(/REDIS_URL: must be a redis:\/\/ URL/);
    expect(run).toThrow(/STORAGE_KIND/);
  });

  it('requires a bucket and paired credentials for s3', () => {
    const env = (extra: Record<string, string>) => loadConfig(schema, { STORAGE_KIND: 's3', ...extra });
    expect(() => storageConfigFromEnv(env({}))).toThrow(/S3_BUCKET: required/);
    expect(() => storageConfigFromEnv(env({ S3_BUCKET: 'bkt', S3_ACCESS_KEY_ID: 'a' }))).toThrow(/set both or neither/);
    expect(storageConfigFromEnv(env({ S3_BUCKET: 'bkt', S3_ENDPOINT: 'http://127.0.0.1:9000' }))).toMatchObject({
      kind: 's3',
      bucket: 'bkt',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
    });
  });
});
