import type { Logger as ServiceLogger } from '@moco/service';

type Fields = Record<string, unknown>;
/** The worker's call shape, message first; entries go to the service's one pino logger. */
export type Logger = Record<'debug' | 'info' | 'warn' | 'error', (message: string, fields?: Fields) => void>;

export function workerLogger(log: ServiceLogger): Logger {
  const at = (level: keyof Logger) => (message: string, fields: Fields = {}) => log[level](fields, message);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
