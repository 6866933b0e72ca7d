export { createDb, sqlPool, type Db } from './client.js';
export { hasPrefix, newId, type IdPrefix } from './ids.js';
export {
  addJobEvent,
  JOB_STATUSES,
  JOB_UPDATES_CHANNEL,
  LIVE_STATUSES,
  notifyJobUpdate,
  TERMINAL_STATUSES,
  transitionJob,
  type JobEventInput,
  type JobStatus,
} from './job-status.js';
export { createDatabaseIfMissing, migrate, MIGRATIONS_DIR } from './migrate.js';
export { createTestDatabase, TEST_SERVER_URL, type TestDatabase } from './test-database.js';
export { Prisma } from './generated/client.js';
export type * from './generated/models.js';
export { API_KEY_CHANGES_CHANNEL, apiKeyUsable, hashApiKey } from './api-keys.js';
export { listen, type Listener, type ListenHandlers } from './listen.js';
export { ApiKeyCache, watchApiKeyChanges, type UsableKey } from './api-key-cache.js';
