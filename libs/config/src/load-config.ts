import { z } from 'zod';

/** Thrown at start-up when the environment is wrong; the message lists every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';

  /** One line per bad variable: `NAME: what is wrong`. */
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/**
 * Parses the environment once with a zod object schema whose keys are variable names.
 * Fails fast, naming each variable and what is wrong with it, so a misconfigured pod dies at
 * start-up instead of at the first request.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // Empty strings mean "unset" (docker-compose writes FOO= for unset variables).
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
}
