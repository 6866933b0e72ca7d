import { apiEnv, databaseEnv, logEnv, redisEnv, storageEnv, sweepEnv } from '@moco/config';
import { z } from 'zod';

/** Every variable the API reads; `loadConfig(ApiEnv)` fails fast naming each bad one. */
export const ApiEnv = z.object({ ...databaseEnv, ...redisEnv, ...storageEnv, ...logEnv, ...apiEnv, ...sweepEnv });
export type ApiConfig = z.infer<typeof ApiEnv>;
