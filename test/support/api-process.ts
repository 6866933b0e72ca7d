import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startNodeProcess, type NodeProcess } from './node-process.js';

// A real API process (apps/api/src/main.ts under tsx): what a crash test can SIGKILL.

const MAIN = path.join(import.meta.dirname, '../../apps/api/src/main.ts');

export interface ApiProcess extends NodeProcess {
  /** http://127.0.0.1:<port> it listens on. */
  url: string;
}

/** Starts the API on a free port and resolves once it listens (after its start-up sweep). */
export async function startApiProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ApiProcess> {
  const service = startNodeProcess(MAIN, { LOG_LEVEL: 'info', API_HOST: '127.0.0.1', API_PORT: '0', ...env });
  const end = Date.now() + timeoutMs;
  for (;;) {
    const line = service.logs.find((l) => l.includes('Server listening at http://127.0.0.1:'));
    if (line) return { ...service, url: /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]! };
    if (service.proc.exitCode !== null || Date.now() > end) {
      await service.stop('SIGKILL');
      throw new Error(`the API did not start:\n${service.logs.slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The ids of a process's children, from /proc (Linux). */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

/** The resident set size of a process, from /proc (Linux). */
export async function residentBytes(pid: number): Promise<number> {
  const kb = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}
