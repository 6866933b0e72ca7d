export { ConfigError, loadConfig } from './load-config.js';
export { apiEnv, backend, bool, databaseEnv, embedderEnv, fashionMnistEnv, logEnv, port, positiveInt, redisEnv, storageEnv, sweepEnv, workerEnv } from './env-schemas.js';
export { storageConfigFromEnv } from './storage-config.js';
export { ApiServiceEnv, EmbedderServiceEnv, SERVICE_ENVS, WorkerServiceEnv, type ServiceName } from './service-envs.js';
