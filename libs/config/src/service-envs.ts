import { z } from 'zod';
import { apiEnv, databaseEnv, embedderEnv, logEnv, redisEnv, storageEnv, sweepEnv, workerEnv } from './env-schemas.js';

// Every variable each long-running service reads, in one place: the services parse their environment
// with these, and the deployment tests check the manifests and docker-compose.yml against them.

export const ApiServiceEnv = z.object({ ...databaseEnv, ...redisEnv, ...storageEnv, ...logEnv, ...apiEnv, ...sweepEnv });

export const WorkerServiceEnv = z.object({
  ...databaseEnv,
  ...redisEnv,
  ...storageEnv,
  ...logEnv,
  ...workerEnv,
  ...sweepEnv,
  // The limits the API validated datasets with, so a dataset it accepted is read the same way here.
  MAX_DATASET_BYTES: apiEnv.MAX_DATASET_BYTES,
  MAX_DATASET_FILES: apiEnv.MAX_DATASET_FILES,
  MAX_IMAGE_PIXELS: apiEnv.MAX_IMAGE_PIXELS,
});

export const EmbedderServiceEnv = z.object({ ...databaseEnv, ...storageEnv, ...logEnv, ...embedderEnv });

export const SERVICE_ENVS = { api: ApiServiceEnv, worker: WorkerServiceEnv, embedder: EmbedderServiceEnv } as const;
export type ServiceName = keyof typeof SERVICE_ENVS;
