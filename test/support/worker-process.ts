import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startNodeProcess, type NodeProcess } from './node-process.js';

// A real worker process (apps/worker/src/main.ts under tsx) for end-to-end tests.

const MAIN = path.join(import.meta.dirname, '../../apps/worker/src/main.ts');

export type WorkerProcess = NodeProcess;

/** The variables a worker needs to share an API's database, queue and S3 bucket. */
export function workerEnvFrom(config: {
  DATABASE_URL: string;
  REDIS_URL: string;
  QUEUE_PREFIX: string;
  S3_BUCKET?: string;
  S3_ENDPOINT?: string;
  S3_REGION: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
}): Record<string, string> {
  return {
    DATABASE_URL: config.DATABASE_URL,
    REDIS_URL: config.REDIS_URL,
    QUEUE_PREFIX: config.QUEUE_PREFIX,
    STORAGE_KIND: 's3',
    S3_BUCKET: config.S3_BUCKET!,
    S3_ENDPOINT: config.S3_ENDPOINT!,
    S3_REGION: config.S3_REGION,
    S3_ACCESS_KEY_ID: config.S3_ACCESS_KEY_ID!,
    S3_SECRET_ACCESS_KEY: config.S3_SECRET_ACCESS_KEY!,
    S3_FORCE_PATH_STYLE: 'true',
  };
}

export function startWorkerProcess(env: Record<string, string>): WorkerProcess {
  return startNodeProcess(MAIN, { TRAIN_BACKEND: 'wasm', LOG_LEVEL: 'info', ...env });
}

/** The worker's trainer children (tsx also runs an esbuild child). */
export function trainersOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid), '-f', 'trainer-child'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

/** Gone, or a zombie nobody has reaped yet: either way it trains no more. */
export function isGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}
