import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { idxArchive } from '@moco/data';
import { Rng } from '@moco/moco';
import { MocoApiError, MocoClient } from '@moco/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestApp } from '../../apps/api/src/testing/test-app.js';
import { patterns, PATTERN_SIZE } from '../support/patterns.js';
import { range, waitFor } from '../support/wait.js';
import { isGone, startWorkerProcess, trainersOf, workerEnvFrom, type WorkerProcess } from '../support/worker-process.js';

// Stops at random steps, through the real API, a real worker process (and its trainer child),
// Postgres, Redis and S3: a cancel, an exceeded max_runtime_s, a SIGTERM of the worker and a
// SIGKILL of it, with and without checkpoint_every, and a cancel that races the end of training.
// Every stop must land within 2 s with the right terminal status and a true message; a SIGTERM'd
// job resumes from the checkpoint taken at the signal on a new worker, with every metric step once;
// an orphaned trainer child exits. STOPS_SEED replays a run (the seed is printed on failure);
// STOPS_ROUNDS repeats the whole set for a longer soak.

const SEED = Number(process.env.STOPS_SEED ?? Math.floor(Math.random() * 1e9));
const ROUNDS = Number(process.env.STOPS_ROUNDS ?? 1);
const STOP_WITHIN_MS = 2_000;
const IMAGES = 64;
const HP = { width: 4, dim: 16, K: 128, batch_size: 16, bn_splits: 4, image_size: PATTERN_SIZE, knn_k: 20 };
const STEPS_PER_EPOCH = IMAGES / HP.batch_size;

const rng = new Rng(SEED);
/** Milliseconds from each stop (request, deadline, signal) to the job's terminal or requeued event. */
const stopTimes: { kind: string; ms: number }[] = [];
/** Milliseconds from each SIGTERM to the worker's exit. */
const exitTimes: number[] = [];

describe('stops at any step', () => {
  const t = useTestApp({ MAX_UPLOAD_BYTES: String(4 * 1024 ** 2) });
  let client: MocoClient;
  let datasetId: string;
  let cacheDir: string;
  const workers: WorkerProcess[] = [];
  let worker: WorkerProcess;

  const startWorker = () => {
    const w = startWorkerProcess({
      ...workerEnvFrom(t.current.config),
      WORKER_CACHE_DIR: cacheDir,
      WORKER_LOCK_DURATION_MS: '3000',
      WORKER_STALLED_INTERVAL_MS: '1000',
    });
    workers.push(w);
    return w;
  };
  const context = () => `seed ${SEED}; worker logs:\n${workers.flatMap((w) => w.logs.slice(-10)).join('\n')}`;
  const until = <T>(what: string, probe: () => Promise<T | null | undefined | false>) => waitFor(what, probe, { timeoutMs: 60_000, context });

  const db = () => t.current.db;
  const jobRow = (id: string) => db().job.findUniqueOrThrow({ where: { id } });
  const lastEvent = (jobId: string, type: string) => db().jobEvent.findFirst({ where: { jobId, type }, orderBy: { id: 'desc' } });
  const newestCheckpoint = (jobId: string) => db().checkpoint.findFirst({ where: { jobId }, orderBy: { step: 'desc' } });
  const lossSteps = async (jobId: string) =>
    (await db().metric.findMany({ where: { jobId, name: 'loss' }, orderBy: { step: 'asc' } })).map((m) => m.step);

  const createJob = async (epochs: number, extra: { checkpoint_every?: number; max_runtime_s?: number }) =>
    (await client.jobs.create({ dataset_id: datasetId, hyperparameters: { ...HP, epochs }, seed: rng.int(1000), ...extra })).id;

  /** A random step to stop at, in [first, last] (0: while the trainer still loads), reached as the worker reports it. */
  const reachStep = async (id: string, last: number, first = 0) => {
    const at = first + rng.int(last - first + 1);
    await until(`job ${id} at step ${at}`, async () => {
      const job = await jobRow(id);
      return job.status === 'running' && job.step >= at;
    });
  };

  /** checkpoint_every for a case: none, or a random period. */
  const periodic = (withCheckpoints: boolean) => (withCheckpoints ? { checkpoint_every: 2 + rng.int(6) } : {});

  beforeAll(async () => {
    cacheDir = await mkdtemp(path.join(tmpdir(), 'moco-stops-cache-'));
    client = new MocoClient({ baseUrl: t.current.url, apiKey: (await t.current.createKey('stops')).key });
    const ds = await client.datasets.upload(await idxArchive(patterns(IMAGES, 1)), { name: 'patterns' });
    datasetId = ds.id;
    worker = startWorker();
  });

  afterAll(async () => {
    for (const w of workers) w.proc.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
    if (stopTimes.length > 0) {
      const ms = stopTimes.map((s) => s.ms).sort((a, b) => a - b);
      console.log(
        `stops: ${ms.length} tried (seed ${SEED}); stop to terminal status: median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms.at(-1)} ms`,
        stopTimes.map((s) => `${s.kind} ${s.ms}`).join(', '),
        `; SIGTERM to worker exit: ${exitTimes.join(', ')} ms`,
      );
    }
  });

  beforeEach(({ onTestFailed }) => onTestFailed(() => console.error(`stops suite seed: ${SEED} (STOPS_SEED=${SEED} replays it)`)));

  /**
   * What a stopped job's message must say, truly: the step it reached and its newest checkpoint,
   * which (after the first step) is the step it reached; and every metric step up to there once.
   */
  const expectTrueStop = async (id: string, step: number, message: string) => {
    const checkpoint = await newestCheckpoint(id);
    expect(message).toContain(` at step ${step}; `);
    expect(message).toContain(checkpoint ? `newest checkpoint: step ${checkpoint.step} (${checkpoint.id})` : 'no checkpoint was saved');
    if (step > 0) expect(checkpoint?.step).toBe(step);
    expect(await lossSteps(id)).toEqual(range(1, step));
  };

  const record = (kind: string, ms: number) => {
    stopTimes.push({ kind, ms });
    expect(ms, `${kind}: ${ms} ms from the stop to its end`).toBeLessThan(STOP_WITHIN_MS);
  };

  for (let round = 0; round < ROUNDS; round++) {
    for (const withCheckpoints of [false, true]) {
      const label = withCheckpoints ? 'with checkpoint_every' : 'without checkpoint_every';

      it(`cancel ends the job cancelled, at the step it reached (${label})`, async () => {
        const id = await createJob(50, periodic(withCheckpoints));
        await reachStep(id, 2 * STEPS_PER_EPOCH);
        const asked = Date.now();
        expect((await client.jobs.cancel(id)).status).toMatch(/^cancell/);
        const job = await until(`job ${id} cancelled`, async () => {
          const row = await jobRow(id);
          return row.status !== 'cancelling' && row.status !== 'running' ? row : null;
        });
        expect(job.status).toBe('cancelled');
        const event = (await lastEvent(id, 'cancelled'))!;
        record('cancel', event.createdAt.getTime() - asked);
        expect(event.data).toMatchObject({ step: job.step });
        await expectTrueStop(id, job.step, event.message);
      });

      it(`max_runtime_s fails the job at its deadline with a true message (${label})`, async () => {
        const id = await createJob(50, { ...periodic(withCheckpoints), max_runtime_s: 3600 });
        await reachStep(id, 2 * STEPS_PER_EPOCH);
        // The limit is read live: lowered to end within a second from now, at whatever step that is.
        const { startedAt } = await jobRow(id);
        const limit = Math.ceil((Date.now() - startedAt!.getTime()) / 1000) + rng.int(2);
        await db().job.update({ where: { id }, data: { maxRuntimeS: limit } });
        const job = await until(`job ${id} failed`, async () => {
          const row = await jobRow(id);
          return row.finishedAt ? row : null;
        });
        expect(job).toMatchObject({ status: 'failed', errorCode: 'max_runtime_exceeded' });
        const event = (await lastEvent(id, 'failed'))!;
        record('max_runtime', event.createdAt.getTime() - (startedAt!.getTime() + limit * 1000));
        expect(job.errorMessage).toContain(`ran longer than max_runtime_s (${limit} s); stopped at step ${job.step}; `);
        await expectTrueStop(id, job.step, job.errorMessage!);
      });

      it(`SIGTERM checkpoints the current step, requeues, and the job resumes there on another worker (${label})`, async () => {
        const epochs = 3;
        // Started first, so that its start-up competes with neither the stop nor its measurement.
        const next = startWorker();
        await until('the next worker to start', async () => next.logs.some((line) => line.includes('worker started')));
        const id = await createJob(epochs, periodic(withCheckpoints));
        // A step with a whole epoch still to go: the signal must land before training ends by itself
        // (steps of this tiny model take milliseconds, and seeing the step takes a poll).
        await reachStep(id, (epochs - 1) * STEPS_PER_EPOCH - 2);
        // Either worker may have taken the job: the other one resumes it.
        const { workerId } = await jobRow(id);
        const holder = [worker, next].find((w) => w.logs.some((line) => line.includes(`"worker_id":"${workerId}"`)))!;
        const signalled = Date.now();
        holder.proc.kill('SIGTERM');
        expect(await holder.exited).toEqual({ code: 0, signal: null });
        exitTimes.push(Date.now() - signalled);
        // Well within Kubernetes' default grace period (30 s) before it would SIGKILL.
        expect(exitTimes.at(-1)).toBeLessThan(10_000);
        worker = holder === worker ? next : worker;
        const requeued = await until(`job ${id} requeued`, () => lastEvent(id, 'requeued'));
        record('sigterm', requeued.createdAt.getTime() - signalled);
        const at = (requeued.data as { step: number }).step;
        const checkpoint = await newestCheckpoint(id);
        if (at > 0) expect(requeued.data).toMatchObject({ reason: 'shutdown', checkpoint_id: checkpoint!.id });
        expect(checkpoint?.step ?? 0).toBe(at);

        const done = await until(`job ${id} succeeded`, async () => {
          const row = await jobRow(id);
          return row.finishedAt ? row : null;
        });
        expect(done).toMatchObject({ status: 'succeeded', step: epochs * STEPS_PER_EPOCH, attempts: 2 });
        const loaded = await db().jobEvent.findMany({ where: { jobId: id, type: 'dataset_loaded' }, orderBy: { id: 'asc' } });
        expect((loaded.at(-1)!.data as { resumed_from_step: number | null }).resumed_from_step ?? 0).toBe(at);
        expect(await lossSteps(id)).toEqual(range(1, epochs * STEPS_PER_EPOCH));
      });

      // Without checkpoint_every only: with it, the child noticed anyway, at the I/O of its next checkpoint.
      if (withCheckpoints) continue;
      it("a SIGKILLed worker's trainer child exits promptly instead of training on", async () => {
        const id = await createJob(50, {});
        // Once it trains (a child still loading notices only when it first reports, however long loading takes).
        await reachStep(id, 2 * STEPS_PER_EPOCH, 1);
        const trainers = await until('the trainer child', async () => {
          const pids = trainersOf(worker.proc.pid!);
          return pids.length > 0 ? pids : null;
        });
        const killed = Date.now();
        worker.proc.kill('SIGKILL');
        worker = startWorker();
        await until('the orphaned trainer to exit', async () => trainers.every(isGone));
        record('orphan', Date.now() - killed);
        // Not left for the next worker to train: ends once that worker takes the lost job over.
        await client.jobs.cancel(id);
      });
    }

    it(`a cancel that arrives as training ends still ends the job cancelled`, async () => {
      // The last step's metrics are written just before the final checkpoint and the end of the run:
      // a cancel sent then lands in that window, unless this machine is too slow to see it (409).
      let id = '';
      let asked = 0;
      for (let tries = 0; tries < 3 && !asked; tries++) {
        id = await createJob(1, {});
        await until(`job ${id} at its last step`, async () => (await jobRow(id)).step === STEPS_PER_EPOCH);
        const sent = Date.now();
        const answer = await client.jobs.cancel(id).catch((err: unknown) => {
          if (err instanceof MocoApiError && err.status === 409) return null;
          throw err;
        });
        if (answer) asked = sent;
      }
      expect(asked, 'each cancel came after its job had ended').toBeGreaterThan(0);
      const job = await until(`job ${id} ended`, async () => {
        const row = await jobRow(id);
        return row.finishedAt ? row : null;
      });
      expect(job.status).toBe('cancelled');
      record('cancel_at_end', (await lastEvent(id, 'cancelled'))!.createdAt.getTime() - asked);
      expect(await newestCheckpoint(id)).toMatchObject({ step: STEPS_PER_EPOCH, final: true });
    });
  }
});
