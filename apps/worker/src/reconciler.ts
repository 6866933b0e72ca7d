import { LIVE_STATUSES, transitionJob, type Db } from '@moco/db';
import { enqueueTraining, type TrainingQueue } from '@moco/queue';
import { errorMessage, type Logger } from './log.js';

export interface ReconcileDeps {
  db: Db;
  queue: TrainingQueue;
  log: Logger;
}

/**
 * Makes the queue match Postgres: every job Postgres says is live needs a message. A job whose
 * message is missing (Redis lost it, or it was never sent) or finished is enqueued again, and a
 * cancel that no worker holds is completed. Safe to run in several workers at once: enqueueing is
 * idempotent by job id, and the cancel is a conditional transition. A job that finishes while
 * this runs may be enqueued once more; its worker then finds it finished and drops the message.
 */
export async function reconcile({ db, queue, log }: ReconcileDeps): Promise<{ enqueued: string[]; cancelled: string[] }> {
  const live = await db.job.findMany({ where: { status: { in: [...LIVE_STATUSES] } }, select: { id: true, status: true }, orderBy: { id: 'asc' } });
  const enqueued: string[] = [];
  const cancelled: string[] = [];
  for (const job of live) {
    const message = await queue.getJob(job.id);
    const state = message ? await message.getState() : 'missing';
    if (state !== 'missing' && state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
    if (job.status === 'cancelling') {
      const done = await transitionJob(db, job.id, {
        from: ['cancelling'],
        to: 'cancelled',
        event: { type: 'cancelled', message: 'cancelled (no worker was running it)' },
        set: { finishedAt: new Date() },
      });
      if (done) cancelled.push(job.id);
      continue;
    }
    await enqueueTraining(queue, job.id);
    enqueued.push(job.id);
  }
  if (enqueued.length || cancelled.length) log.info('reconciled queue with Postgres', { enqueued, cancelled });
  return { enqueued, cancelled };
}

/** Reconciles now and every `intervalS`; `stop` waits for a pass in progress. */
export function startReconciler(deps: ReconcileDeps, intervalS: number): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const pass = () => {
    running = reconcile(deps).catch((err: unknown) => deps.log.error('reconcile failed', { error: errorMessage(err) }));
  };
  pass();
  const timer = setInterval(pass, intervalS * 1000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
