import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiProcess, type ApiProcess } from '../support/api-process.js';
import { startEmbedderProcess, type EmbedderProcess } from '../support/embedder-process.js';
import { startLocalStack, type LocalStack } from '../support/local-stack.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

// The Python client's pytest suite (libs/python-client/tests), README example included, against a
// real API, worker and embedder (processes), Postgres, Redis and a local object store.

const ROOT = path.join(import.meta.dirname, '../..');
/** Debian's interpreter: python3-pytest and python3-grpcio are installed for it (.ci/run). */
const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

const pytestMissing = await run(PYTHON, ['-c', 'import pytest, grpc']).then(
  () => null,
  () => `${PYTHON} lacks pytest or grpcio (apt-get install python3-pytest python3-grpcio)`,
);
if (pytestMissing) console.warn(`skipping the Python client suite: ${pytestMissing}`);

describe.skipIf(pytestMissing !== null || !existsSync(PYTHON))('the Python client', () => {
  let stack: LocalStack;
  let embedder: EmbedderProcess;
  let api: ApiProcess;
  let worker: WorkerProcess;

  beforeAll(async () => {
    stack = await startLocalStack({
      // A short window with a small budget for uploads and job creations: the suite's rate-limit
      // test spends a key's budget and watches the client wait out Retry-After.
      RATE_LIMIT_WINDOW_S: '2',
      RATE_LIMIT_EXPENSIVE_MAX: '5',
      MAX_UPLOAD_BYTES: String(16 * 1024 ** 2),
    });
    [embedder, worker] = await Promise.all([startEmbedderProcess(stack.env), startWorkerProcess(stack.env)]);
    api = await startApiProcess({ ...stack.env, EMBEDDER_URL: embedder.address });
  }, 180_000);
  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop(), embedder?.stop()]);
    await stack?.close();
  });

  it('passes its pytest suite against the real services', async () => {
    const env = {
      ...process.env,
      MOCO_URL: api.url,
      MOCO_GRPC: embedder.address,
      MOCO_KEY: (await stack.createKey('python')).key,
      MOCO_ADMIN_KEY: (await stack.createKey('python-ops', { admin: true })).key,
      PYTHONDONTWRITEBYTECODE: '1',
    };
    const args = ['-m', 'pytest', 'libs/python-client/tests', '-p', 'no:cacheprovider', '-rs', '-q'];
    const { stdout, code } = await run(PYTHON, args, { cwd: ROOT, env, timeout: 240_000 }).then(
      ({ stdout }) => ({ stdout, code: 0 }),
      (err: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: `${err.stdout ?? ''}\n${err.stderr ?? ''}`, code: err.code ?? 1 }),
    );
    const context = `${stdout}\n--- worker ---\n${worker.logs.slice(-15).join('\n')}\n--- api ---\n${api.logs.slice(-15).join('\n')}`;
    expect(code, context).toBe(0);
    // Every test ran: none skipped for a missing service.
    expect(stdout, context).not.toMatch(/skipped/);
  }, 300_000);
});
