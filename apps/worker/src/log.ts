const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LEVELS)[number] | 'silent';
type Fields = Record<string, unknown>;
export type Logger = Record<'debug' | 'info' | 'warn' | 'error', (message: string, fields?: Fields) => void>;

/** JSON lines on stderr (what log collectors expect from a container), at LOG_LEVEL and above. */
export function createLogger(level: LogLevel, base: Fields): Logger {
  const min = level === 'silent' ? Infinity : LEVELS.indexOf(level);
  const at = (name: (typeof LEVELS)[number]) => (message: string, fields: Fields = {}) => {
    if (LEVELS.indexOf(name) < min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: name, ...base, msg: message, ...fields })}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
