import { JOB_STATUS_VALUES, parseJobEventData, type JobEventData, type JobEventType, type JobStatusValue } from '@moco/contracts';
import type { Db } from './client.js';
import type { Prisma } from './generated/client.js';

// The statuses are a shape of libs/contracts (the REST resources show them); jobs.status holds them.
export const JOB_STATUSES = JOB_STATUS_VALUES;
export type JobStatus = JobStatusValue;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];
/** Jobs a worker should hold: Postgres is the source of truth, the queue only carries them. */
export const LIVE_STATUSES: readonly JobStatus[] = ['queued', 'running', 'cancelling'];

/** Postgres channel that carries a job id whenever its row, events, metrics or checkpoints change. */
export const JOB_UPDATES_CHANNEL = 'moco_job_updates';

type Tx = Prisma.TransactionClient | Db;

/** An event to record: its data is of its type's contract shape (checked again when written). */
export type JobEventInput = { [T in JobEventType]: { type: T; message: string; data?: JobEventData<T> } }[JobEventType];

/** Wakes live readers (SSE streams, dashboards) of this job; delivered when the transaction commits. */
export async function notifyJobUpdate(tx: Tx, jobId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_notify(${JOB_UPDATES_CHANNEL}, ${jobId})`;
}

export async function addJobEvent(tx: Tx, jobId: string, event: JobEventInput): Promise<void> {
  const data = parseJobEventData(event.type, event.data ?? {}) as Prisma.InputJsonValue;
  await tx.jobEvent.create({ data: { jobId, type: event.type, message: event.message, data } });
  await notifyJobUpdate(tx, jobId);
}

/**
 * Moves a job from one of `from` to `to` and records the event, atomically. Returns false (and
 * changes nothing) when the job is not in one of `from`: a racing cancel or a second worker loses
 * cleanly instead of overwriting a state it did not see.
 */
export async function transitionJob(
  db: Db,
  jobId: string,
  change: {
    from: readonly JobStatus[];
    to: JobStatus;
    event: JobEventInput;
    set?: Omit<Prisma.JobUpdateManyMutationInput, 'status'>;
  },
): Promise<boolean> {
  return db.$transaction(async (tx) => {
    const { count } = await tx.job.updateMany({
      where: { id: jobId, status: { in: [...change.from] } },
      data: { ...change.set, status: change.to },
    });
    if (count === 0) return false;
    await addJobEvent(tx, jobId, { ...change.event, data: { status: change.to, ...change.event.data } } as JobEventInput);
    return true;
  });
}
