import { format } from 'node:util';
import { ConfigError, loadConfig } from '@moco/config';
import closeWithGrace from 'close-with-grace';
import { pino, type Logger } from 'pino';
import type { z } from 'zod';

export type { Logger } from 'pino';

export interface StartedService<C> {
  config: C;
  log: Logger;
}

/**
 * How every long-running process of the system starts (api, worker, embedder): the environment parsed
 * once with the service's schema, plus `check` for rules across variables (storage); one pino logger
 * writing JSON lines; and whatever libraries print with console or process warnings (tfjs's banner,
 * the AWS SDK's notices) turned into entries of that log, so no plain-text line reaches a log
 * collector. A bad environment ends the process with exit code 1 and one JSON line naming each bad
 * variable, without a stack trace.
 */
export function startService<S extends z.ZodObject>(
  service: string,
  schema: S,
  opts: { env?: NodeJS.ProcessEnv; check?: (config: z.infer<S>) => unknown } = {},
): StartedService<z.infer<S>> {
  let config: z.infer<S>;
  try {
    config = loadConfig(schema, opts.env);
    opts.check?.(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    pino({ base: { service } }).fatal({ problems: err.problems }, err.message);
    process.exit(1);
  }
  const level = (config as { LOG_LEVEL?: string }).LOG_LEVEL ?? 'info';
  const log = pino({ level, base: { service, pid: process.pid } });
  routeConsoleTo(log);
  return { config, log };
}

const CONSOLE_LEVELS = { debug: 'debug', log: 'info', info: 'info', warn: 'warn', error: 'error' } as const;
export type ConsoleLevel = (typeof CONSOLE_LEVELS)[keyof typeof CONSOLE_LEVELS];

/**
 * Hands this thread's console output to `sink` instead of stdout and stderr. Libraries print with
 * console as plain text (tfjs's banner); reassigning the methods is the only hook Node gives. A worker
 * thread, whose console goes to the process's stdout past the main thread's, calls it for itself.
 */
export function routeConsole(sink: (level: ConsoleLevel, line: string) => void): void {
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) {
    (console as unknown as Record<string, (...args: unknown[]) => void>)[method] = (...args: unknown[]) => sink(level, format(...args));
  }
}

/**
 * Sends console output and process warnings to `log` (a child process calls it for itself). Node
 * prints warnings to stderr as plain text unless process.emitWarning is replaced.
 */
export function routeConsoleTo(log: Logger): void {
  routeConsole((level, line) => log[level]({ source: 'console' }, line));
  process.emitWarning = ((warning: string | Error, options?: unknown) => {
    const type = typeof options === 'string' ? options : ((options as { type?: string } | undefined)?.type ?? 'Warning');
    log.warn({ source: 'process', warning_type: warning instanceof Error ? warning.name : type }, warning instanceof Error ? warning.message : String(warning));
  }) as typeof process.emitWarning;
}

/**
 * The logger of a child process of a service (the worker's trainer): the same JSON lines, tagged with
 * the service and the child's role, console output included. Its parent validated LOG_LEVEL.
 */
export function childProcessLogger(service: string, role: string): Logger {
  const log = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { service, role, pid: process.pid } });
  routeConsoleTo(log);
  return log;
}

/**
 * SIGTERM/SIGINT, an uncaught exception or an unhandled rejection: `close` once, then exit (0 after a
 * signal, 1 after an error or when `close` fails). After `delayMs` (false: no limit, for a process
 * whose orchestrator bounds the stop) the exit is forced with code 1.
 */
export function onShutdown(log: Logger, delayMs: number | false, close: (reason: { signal?: string; err?: Error }) => Promise<void>): void {
  closeWithGrace(
    { delay: delayMs, logger: { error: (message: unknown) => log.error({ err: message }, 'shutdown did not complete') } },
    async ({ signal, err }) => {
      if (err) log.fatal({ err }, 'shutting down after an uncaught error');
      else log.info({ signal }, 'shutting down');
      await close({ signal, err });
      log.info('stopped');
    },
  );
}
