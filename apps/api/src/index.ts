export { buildApp, type AppDeps } from './app.js';
export { ApiEnv, type ApiConfig } from './config.js';
export { createKeyRepository } from './keys/key-repository.js';
export { createKeyService, KEY_PREFIX, type CreatedKey, type KeyService } from './keys/key-service.js';
