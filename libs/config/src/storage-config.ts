import type { ObjectStoreConfig } from '@moco/storage';
import { z } from 'zod';
import { ConfigError } from './load-config.js';
import { storageEnv } from './env-schemas.js';

const storageSchema = z.object(storageEnv);
type StorageEnv = z.infer<typeof storageSchema>;

/** Turns the flat STORAGE_* / S3_* variables into the object-store configuration. */
export function storageConfigFromEnv(env: StorageEnv): ObjectStoreConfig {
  if (env.STORAGE_KIND === 'local') return { kind: 'local', root: env.STORAGE_ROOT };
  if (!env.S3_BUCKET) throw new ConfigError(['S3_BUCKET: required when STORAGE_KIND=s3']);
  if (Boolean(env.S3_ACCESS_KEY_ID) !== Boolean(env.S3_SECRET_ACCESS_KEY)) {
    throw new ConfigError(['S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY: set both or neither (neither uses the default AWS credential chain)']);
  }
  return {
    kind: 's3',
    bucket: env.S3_BUCKET,
    prefix: env.S3_PREFIX,
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    accessKeyId: env.S3_ACCESS_KEY_ID,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
  };
}
