import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestS3Server } from '@moco/storage';
import { startNodeProcess, type NodeProcess } from './node-process.js';

// A real embedder process (apps/embedder/src/main.ts under tsx): where what is tested is that it does not die.

const MAIN = path.join(import.meta.dirname, '../../apps/embedder/src/main.ts');

export interface EmbedderProcess extends NodeProcess {
  /** host:port it serves on. */
  address: string;
}

/** The variables that point an embedder at a test S3 server's bucket. */
export function s3EnvOf(s3: TestS3Server): Record<string, string> {
  return {
    STORAGE_KIND: 's3',
    S3_BUCKET: s3.bucket,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
  };
}

/** Starts it on a free port and resolves once it serves; `env` adds to the process's own environment. */
export async function startEmbedderProcess(env: Record<string, string>, timeoutMs = 120_000): Promise<EmbedderProcess> {
  const child = startNodeProcess(MAIN, { EMBED_PORT: '0', LOG_LEVEL: 'info', ...env });
  let exited = false;
  void child.exited.then(() => (exited = true));
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !exited) {
    for (const line of child.logs) {
      const address = line.includes('embedder listening') ? (JSON.parse(line) as { address?: string }).address : undefined;
      if (address) return { ...child, address };
    }
    await sleep(50);
  }
  await child.stop('SIGKILL');
  throw new Error(`the embedder did not start:\n${child.logs.join('\n')}`);
}
