import { spawn, type ChildProcess } from 'node:child_process';

const TSX = import.meta.resolve('tsx');

export interface NodeProcess {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its log lines (JSON), for assertions and for failure messages. */
  logs: string[];
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A real service process for end-to-end and fault tests: a TypeScript entry under tsx, or compiled JavaScript under plain node. */
export function startNodeProcess(main: string, env: Record<string, string>): NodeProcess {
  const proc = spawn(process.execPath, [...(main.endsWith('.ts') ? ['--import', TSX] : []), main], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const keep = (chunk: Buffer) => logs.push(...chunk.toString().split('\n').filter(Boolean));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    exited,
    logs,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
