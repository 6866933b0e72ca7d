import { afterAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../apps/api/src/testing/test-app.js';
import { startWorkerProcess, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';

// The worker's operations endpoints (what Kubernetes probes and Prometheus read), on a real worker
// process over real Postgres, Redis and S3.

let api: TestApp | undefined;
let worker: WorkerProcess | undefined;

afterAll(async () => {
  await worker?.stop();
  await api?.close();
});

/** The ops server's URL, from the worker's start-up log line. */
async function opsUrlOf(w: WorkerProcess): Promise<string> {
  const end = Date.now() + 90_000;
  while (Date.now() < end) {
    for (const line of w.logs) {
      const entry = JSON.parse(line.startsWith('{') ? line : '{}') as { msg?: string; ops_url?: string };
      if (entry.msg === 'worker started' && entry.ops_url) return entry.ops_url;
    }
    if (w.proc.exitCode !== null) throw new Error(`worker exited: ${w.logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`worker did not start: ${w.logs.join('\n')}`);
}

describe('worker operations endpoints', () => {
  it('serves /healthz, /readyz naming each dependency, and Prometheus /metrics', async () => {
    api = await startTestApp();
    worker = startWorkerProcess({ ...workerEnvFrom(api.config), WORKER_OPS_PORT: '0' });
    const url = await opsUrlOf(worker);

    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', storage: 'ok' } });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toContain('process_cpu_user_seconds_total');

    // A store that stops answering makes the worker unready, and says which dependency failed.
    await api.s3.close();
    const unready = await fetch(`${url}/readyz`);
    expect(unready.status).toBe(503);
    expect(await unready.json()).toMatchObject({ status: 'unavailable', checks: { postgres: 'ok', redis: 'ok', storage: 'failed' } });
  });
});
