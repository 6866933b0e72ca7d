import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { idxArchive } from '@moco/data';
import { MocoClient } from '@moco/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../apps/api/src/testing/test-app.js';
import { patterns } from '../support/patterns.js';
import { scrape } from '../support/prometheus.js';
import { waitFor } from '../support/wait.js';
import { startWorkerProcess, trainersOf, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';

// The worker's operations endpoints (what Kubernetes probes and Prometheus read), on a real worker
// process over real Postgres, Redis and S3, training real (tiny) jobs. The tests run in order and
// share the worker: the metrics are its totals so far.

const SMALL = { width: 4, dim: 16, K: 256, batch_size: 32, bn_splits: 4 };
/** The readiness bound on a silent trainer: short, so that a stopped trainer shows within seconds. */
const SILENCE_S = 5;

let api: TestApp;
let worker: WorkerProcess;
let client: MocoClient;
let url: string;
let datasetId: string;
let cacheDir: string;

const context = () => `worker logs:\n${worker.logs.slice(-20).join('\n')}`;
const readiness = async () => {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string> } };
};

/** The ops server's URL, from the worker's start-up log line. */
function opsUrlOf(w: WorkerProcess): Promise<string> {
  return waitFor(
    'the worker to start',
    async () => {
      if (w.proc.exitCode !== null) throw new Error(`worker exited: ${w.logs.join('\n')}`);
      for (const line of w.logs) {
        const entry = JSON.parse(line.startsWith('{') ? line : '{}') as { msg?: string; ops_url?: string };
        if (entry.msg === 'worker started' && entry.ops_url) return entry.ops_url;
      }
      return null;
    },
    { context },
  );
}

beforeAll(async () => {
  api = await startTestApp();
  cacheDir = await mkdtemp(path.join(tmpdir(), 'ops-cache-'));
  worker = startWorkerProcess({
    ...workerEnvFrom(api.config),
    WORKER_OPS_PORT: '0',
    WORKER_CACHE_DIR: cacheDir,
    WORKER_TRAINER_SILENCE_S: String(SILENCE_S),
  });
  client = new MocoClient({ baseUrl: api.url, apiKey: (await api.createKey('ops')).key });
  [url, { id: datasetId }] = await Promise.all([opsUrlOf(worker), client.datasets.upload(await idxArchive(patterns(256, 1)), { name: 'patterns' })]);
});

afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await rm(cacheDir, { recursive: true, force: true });
});

describe('worker operations endpoints', () => {
  it('serves /healthz, /readyz naming each dependency, and Prometheus /metrics', async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await readiness()).toEqual({ status: 200, body: { status: 'ok', checks: { postgres: 'ok', redis: 'ok', storage: 'ok', trainer: 'ok' } } });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('moco_worker_jobs_total{outcome="succeeded"} 0');
    expect(text).toContain('moco_worker_job_running 0');
  });

  it('counts a real training run: one success, its steps and images, its checkpoint uploads', async () => {
    const job = await client.jobs.create({ dataset_id: datasetId, hyperparameters: { ...SMALL, epochs: 1 }, seed: 1, checkpoint_every: 4 });
    const done = await client.jobs.wait(job.id);
    expect(done.status, context()).toBe('succeeded');
    const steps = done.progress.total_steps;
    expect(steps).toBe(8);
    // One upload per checkpoint_saved event (the final checkpoint can save a step once more, as final).
    const uploads = (await client.jobs.eventPage(job.id, { limit: 100 })).data.filter((e) => e.type === 'checkpoint_saved').length;
    expect(uploads).toBeGreaterThanOrEqual(2);

    const m = await scrape(url);
    expect(m.get('moco_worker_jobs_total{outcome="succeeded"}')).toBe(1);
    for (const outcome of ['failed', 'cancelled', 'requeued', 'lost']) expect(m.get(`moco_worker_jobs_total{outcome="${outcome}"}`)).toBe(0);
    expect(m.get('moco_worker_training_steps_total')).toBe(steps);
    expect(m.get('moco_worker_images_trained_total')).toBe(steps * SMALL.batch_size);
    expect(m.get('moco_worker_checkpoint_write_seconds_count')).toBe(uploads);
    expect(m.get('moco_worker_checkpoint_write_seconds_sum')).toBeGreaterThan(0);
    // Idle again: nothing running, no throughput.
    expect(m.get('moco_worker_job_running')).toBe(0);
    expect(m.get('moco_worker_images_per_second')).toBe(0);
  });

  it('turns unready while the running trainer reports nothing (SIGSTOPped), and ready again once it goes on', async () => {
    const job = await client.jobs.create({ dataset_id: datasetId, hyperparameters: { ...SMALL, epochs: 50 }, seed: 2, checkpoint_every: 100 });
    const trainer = await waitFor('a trainer that has trained a step', async () => {
      const [pid] = trainersOf(worker.proc.pid!);
      return pid !== undefined && (await client.jobs.get(job.id)).progress.step > 0 && pid;
    }, { context });
    // A trainer that reports is a ready one.
    await waitFor('readiness while training', async () => (await readiness()).status === 200, { context });
    const running = await scrape(url);
    expect(running.get('moco_worker_job_running')).toBe(1);
    expect(running.get('moco_worker_images_per_second')).toBeGreaterThan(0);

    process.kill(trainer, 'SIGSTOP');
    try {
      const stoppedAt = performance.now();
      const unready = await waitFor('readiness to fail', async () => {
        const r = await readiness();
        return r.status === 503 && r;
      }, { context, timeoutMs: 60_000 });
      // Not at once: the bound counts from the trainer's last report (a step, well under a second, before the stop).
      expect(performance.now() - stoppedAt).toBeGreaterThan(1000);
      expect(unready.body).toEqual({ status: 'unavailable', checks: { postgres: 'ok', redis: 'ok', storage: 'ok', trainer: 'failed' } });
      expect(worker.logs.some((l) => l.includes('readiness check failed') && l.includes('reported nothing'))).toBe(true);
    } finally {
      process.kill(trainer, 'SIGCONT');
    }
    await waitFor('readiness again', async () => (await readiness()).status === 200, { context, timeoutMs: 60_000 });
    await client.jobs.cancel(job.id);
    expect((await client.jobs.wait(job.id)).status).toBe('cancelled');
    const m = await scrape(url);
    expect(m.get('moco_worker_jobs_total{outcome="cancelled"}')).toBe(1);
  });

  it('names the failed dependency when the store stops answering', async () => {
    await api.s3.close();
    const unready = await readiness();
    expect(unready.status).toBe(503);
    expect(unready.body).toMatchObject({ status: 'unavailable', checks: { postgres: 'ok', redis: 'ok', storage: 'failed' } });
  });
});
