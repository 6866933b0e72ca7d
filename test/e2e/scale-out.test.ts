import { idxArchive } from '@moco/data';
import { MocoClient } from '@moco/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiProcess, type ApiProcess } from '../support/api-process.js';
import { startLocalStack, type LocalStack } from '../support/local-stack.js';
import { patterns } from '../support/patterns.js';
import { range, waitFor } from '../support/wait.js';
import { isGone, startWorkerProcess, trainersOf, type WorkerProcess } from '../support/worker-process.js';

// Scaling out as the architecture has it: identical worker processes on one queue and two API
// processes on one Postgres and Redis, no scheduler of our own. A burst of jobs, submitted to both
// APIs, runs each job exactly once, one worker at a time; a worker SIGKILLed mid-job loses nothing:
// its job resumes on another worker from its newest checkpoint. SCALE_OUT_JOBS makes the burst
// larger for a soak.

const WORKERS = 3;
const JOBS = Number(process.env.SCALE_OUT_JOBS ?? 8);
const SMALL = { width: 4, dim: 16, K: 256, batch_size: 32, bn_splits: 4, image_size: 16 };
/** Steps per epoch: 256 images in batches of 32. */
const EPOCH_STEPS = 8;
/** The first job runs longer, so that it can be caught mid-run and its worker killed. */
const LONG_EPOCHS = 4;

let stack: LocalStack;
const apis: ApiProcess[] = [];
const workers = new Map<string, WorkerProcess>();

const context = () => [...workers].map(([id, w]) => `${id}:\n${w.logs.slice(-10).join('\n')}`).join('\n');

beforeAll(async () => {
  // Short locks: a dead worker's job is found stalled, and taken over, within seconds (as in worker.test.ts).
  stack = await startLocalStack({ WORKER_LOCK_DURATION_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000' });
  for (const i of range(1, WORKERS)) workers.set(`worker-${i}`, startWorkerProcess({ ...stack.env, WORKER_ID: `worker-${i}` }));
  apis.push(...(await Promise.all([startApiProcess(stack.env), startApiProcess(stack.env)])));
}, 120_000);

afterAll(async () => {
  await Promise.all([...workers.values(), ...apis].map((p) => p.stop('SIGKILL')));
  await stack?.close();
});

describe('scale-out: three workers, two APIs, one Postgres and Redis', () => {
  it('runs a burst of jobs each exactly once, and moves a killed worker’s job to another worker, which resumes it', async () => {
    const started = performance.now();
    const key = (await stack.createKey('scale')).key;
    const clients = apis.map((api) => new MocoClient({ baseUrl: api.url, apiKey: key }));
    const dataset = await clients[0]!.datasets.upload(await idxArchive(patterns(256, 5)), { name: 'patterns' });

    // Submitted alternately to the two APIs, all at once.
    const jobs = await Promise.all(
      range(0, JOBS - 1).map((i) =>
        clients[i % 2]!.jobs.create({
          dataset_id: dataset.id,
          hyperparameters: { ...SMALL, epochs: i === 0 ? LONG_EPOCHS : 1 },
          seed: i,
          checkpoint_every: 4,
        }),
      ),
    );
    const long = jobs[0]!;

    // Kill the long job's worker once it has a checkpoint to resume from, mid-run.
    const victim = await waitFor(
      'the long job to checkpoint',
      async () => {
        const row = await stack.db.job.findUniqueOrThrow({ where: { id: long.id } });
        const checkpoint = await stack.db.checkpoint.findFirst({ where: { jobId: long.id } });
        return checkpoint && row.status === 'running' && row.workerId;
      },
      { context },
    );
    const killed = workers.get(victim)!;
    const trainers = trainersOf(killed.proc.pid!);
    killed.proc.kill('SIGKILL');
    await killed.exited;
    const killedAt = new Date();
    const stepAtKill = (await stack.db.job.findUniqueOrThrow({ where: { id: long.id } })).step;
    expect(stepAtKill).toBeLessThan(LONG_EPOCHS * EPOCH_STEPS);
    await waitFor('the orphaned trainer to exit', async () => trainers.every(isGone), { context });

    const done = await Promise.all(jobs.map((job, i) => clients[i % 2]!.jobs.wait(job.id)));
    const seconds = (performance.now() - started) / 1000;
    expect(done.map((j) => j.status), context()).toEqual(jobs.map(() => 'succeeded'));

    /** Per worker, the spans it held jobs: from a `started` to the job's next event of another holder or its end. */
    const spans: { worker: string; jobId: string; from: Date; to: Date }[] = [];
    for (const [i, job] of done.entries()) {
      const total = (i === 0 ? LONG_EPOCHS : 1) * EPOCH_STEPS;
      expect(job.progress.step).toBe(total);
      // Every step's metric once, contiguous: no step lost, none trained twice into the record.
      const rows = await stack.db.metric.findMany({ where: { jobId: job.id, name: 'loss' }, orderBy: { step: 'asc' } });
      expect(rows.map((r) => r.step)).toEqual(range(1, total));

      const events = await stack.db.jobEvent.findMany({ where: { jobId: job.id }, orderBy: { id: 'asc' } });
      const starts = events.filter((e) => e.type === 'started');
      const holders = starts.map((e) => (e.data as { worker_id: string }).worker_id);
      const row = await stack.db.job.findUniqueOrThrow({ where: { id: job.id } });
      // One `started` per attempt, each naming a worker of this test.
      expect(starts.map((e) => (e.data as { attempt: number }).attempt)).toEqual(range(1, row.attempts));
      for (const holder of holders) expect(workers.has(holder)).toBe(true);
      const end = events.at(-1)!;
      expect(end.type).toBe('succeeded');
      starts.forEach((s, k) => spans.push({ worker: holders[k]!, jobId: job.id, from: s.createdAt, to: starts[k + 1]?.createdAt ?? end.createdAt }));

      if (job.id === long.id) {
        // Killed once: a second attempt on another worker, after the kill, resuming from a checkpoint.
        expect(holders).toHaveLength(2);
        expect(holders[0]).toBe(victim);
        expect(holders[1]).not.toBe(victim);
        expect(starts[1]!.createdAt.getTime()).toBeGreaterThanOrEqual(killedAt.getTime() - 1000);
        expect(events.find((e) => e.type === 'requeued')?.data).toMatchObject({ reason: 'worker_lost', worker_id: victim });
        const resumed = events.filter((e) => e.type === 'dataset_loaded').map((e) => (e.data as { resumed_from_step: number | null }).resumed_from_step);
        expect(resumed[0]).toBeNull();
        expect(resumed[1]).toBeGreaterThanOrEqual(4);
      } else {
        expect(holders).toHaveLength(1);
      }
    }
    // Concurrency 1: no worker held two jobs at once (spans of one worker do not overlap).
    for (const worker of workers.keys()) {
      const own = spans.filter((s) => s.worker === worker).sort((a, b) => a.from.getTime() - b.from.getTime());
      for (let k = 1; k < own.length; k++) expect(own[k]!.from.getTime(), `${worker}: ${own[k - 1]!.jobId} then ${own[k]!.jobId}`).toBeGreaterThanOrEqual(own[k - 1]!.to.getTime());
    }
    // More than one worker did the work.
    expect(new Set(spans.map((s) => s.worker)).size).toBeGreaterThanOrEqual(2);

    const resumedAfter = (spans.find((s) => s.jobId === long.id && s.worker !== victim)!.from.getTime() - killedAt.getTime()) / 1000;
    console.log(
      `scale-out: ${JOBS} jobs (${done.reduce((n, j) => n + j.progress.step, 0)} steps) on ${WORKERS} workers and 2 APIs in ${seconds.toFixed(1)} s; ` +
        `killed ${victim} at step ${stepAtKill} of ${long.id}, resumed on another worker ${resumedAfter.toFixed(1)} s later`,
    );
  }, 240_000);
});
