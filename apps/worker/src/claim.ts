import { TERMINAL_STATUSES, transitionJob, type Db, type JobStatus } from '@moco/db';

export type ClaimedJob = NonNullable<Awaited<ReturnType<typeof loadJob>>>;

export type Claim =
  /** Nothing to run: the job is finished, gone, or its cancel was completed here. */
  | { kind: 'none' }
  /** Another worker seems alive on it: look again at `retryAt`. */
  | { kind: 'busy'; retryAt: number; workerId: string | null }
  | { kind: 'claimed'; job: ClaimedJob };

function loadJob(db: Db, jobId: string) {
  return db.job.findUnique({ where: { id: jobId }, include: { dataset: true, evalDataset: true } });
}

/**
 * Makes this worker the job's holder (status running, worker_id, attempts + 1) for a queue
 * message it was handed. A job that is already running or cancelling was held by a worker that
 * BullMQ now considers lost (its lock expired). It is taken over only once its heartbeat is older
 * than the lock duration, or when it names this very worker (a previous attempt of this process):
 * a worker that lost its lock while still alive keeps beating and is left alone, and should it
 * still be running when it is taken over, its next write finds another worker_id and it stops.
 * The take-over goes through `queued` (event `requeued`), as any lost job does.
 */
export async function claimJob(db: Db, jobId: string, me: string, lockDurationMs: number): Promise<Claim> {
  // Each pass moves the row one step or sees another writer's move; a few passes always settle.
  for (let pass = 0; pass < 5; pass++) {
    const job = await loadJob(db, jobId);
    if (!job || TERMINAL_STATUSES.includes(job.status as JobStatus)) return { kind: 'none' };
    if (job.status === 'queued') {
      const now = new Date();
      const attempt = job.attempts + 1;
      const started = await transitionJob(db, jobId, {
        from: ['queued'],
        to: 'running',
        event: { type: 'started', message: `attempt ${attempt} started on worker ${me}`, data: { attempt, worker_id: me } },
        set: { workerId: me, attempts: { increment: 1 }, heartbeatAt: now, startedAt: job.startedAt ?? now, errorCode: null, errorMessage: null },
      });
      if (started) return { kind: 'claimed', job: { ...job, status: 'running', workerId: me, attempts: attempt, heartbeatAt: now, startedAt: job.startedAt ?? now } };
      continue;
    }
    const staleAt = (job.heartbeatAt?.getTime() ?? 0) + lockDurationMs;
    if (job.workerId !== me && staleAt > Date.now()) return { kind: 'busy', retryAt: staleAt, workerId: job.workerId };
    if (job.status === 'cancelling') {
      const done = await transitionJob(db, jobId, {
        from: ['cancelling'],
        to: 'cancelled',
        event: { type: 'cancelled', message: `cancelled (its worker ${job.workerId} was lost)`, data: { step: job.step } },
        set: { finishedAt: new Date() },
      });
      if (done) return { kind: 'none' };
      continue;
    }
    await transitionJob(db, jobId, {
      from: ['running'],
      to: 'queued',
      event: {
        type: 'requeued',
        message: `worker ${job.workerId} was lost; resuming from the newest checkpoint`,
        data: { reason: 'worker_lost', worker_id: job.workerId, step: job.step },
      },
      set: { workerId: null },
    });
  }
  throw new Error(`job ${jobId} kept changing while this worker tried to claim it`);
}
