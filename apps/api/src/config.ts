import { ApiServiceEnv } from '@moco/config';
import type { z } from 'zod';

/** Every variable the API reads; `loadConfig(ApiEnv)` fails fast naming each bad one. */
export const ApiEnv = ApiServiceEnv;
export type ApiConfig = z.infer<typeof ApiEnv>;
