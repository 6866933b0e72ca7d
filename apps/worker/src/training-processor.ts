import { transitionJob, type JobStatus } from '@moco/db';
import type { QueuePayloads } from '@moco/queue';
import { DelayedError, UnrecoverableError, WaitingError, type Job as Message } from 'bullmq';
import { claimJob, type ClaimedJob } from './claim.js';
import { JobRun, type RunOutcome, type RunSettings } from './job-run.js';
import { errorMessage } from './log.js';
import { UserError } from './protocol.js';

export type TrainingMessage = Message<QueuePayloads['training']>;

export interface ProcessorSettings extends RunSettings {
  lockDurationMs: number;
}

/**
 * The BullMQ processor of the training queue (one job at a time per worker). Postgres decides
 * what happens; the queue message is only acknowledged, retried, delayed or given back to match.
 */
export class TrainingProcessor {
  private active: JobRun | null = null;
  private closing = false;

  constructor(private readonly settings: ProcessorSettings) {}

  /** Takes no more jobs; the running one stops with a checkpoint and goes back to the queue. */
  shutdown(): void {
    this.closing = true;
    this.active?.stop('shutdown');
  }

  readonly process = async (message: TrainingMessage, token?: string): Promise<void> => {
    const { db, workerId, lockDurationMs, log } = this.settings;
    const { jobId } = message.data;
    if (this.closing) return giveBack(message, token);
    const claim = await claimJob(db, jobId, workerId, lockDurationMs);
    if (claim.kind === 'none') return;
    if (claim.kind === 'busy') {
      // Not a failure: look again once that worker's heartbeat would be stale, using no attempt.
      log.info('job still beats on another worker; delaying its message', { job_id: jobId, holder: claim.workerId });
      await message.moveToDelayed(claim.retryAt + 100, token);
      throw new DelayedError();
    }
    const { job } = claim;
    log.info('job started', { job_id: jobId, attempt: job.attempts });
    const run = new JobRun(this.settings, job, (step, epoch) => {
      // Progress in Redis is for queue dashboards only: never worth failing a run over.
      message.updateProgress({ step, total_steps: job.totalSteps, epoch }).catch((err: unknown) => {
        log.warn('could not update queue progress', { job_id: jobId, error: errorMessage(err) });
      });
    });
    this.active = run;
    if (this.closing) run.stop('shutdown');
    let outcome: RunOutcome;
    try {
      outcome = await run.execute();
    } catch (err) {
      outcome =
        err instanceof UserError
          ? { kind: 'failed', userError: true, code: err.code, message: err.message }
          : { kind: 'failed', userError: false, code: 'infrastructure_error', message: errorMessage(err) };
    } finally {
      this.active = null;
    }
    log.info('job run ended', { job_id: jobId, outcome: outcome.kind, ...('reason' in outcome ? { reason: outcome.reason } : {}) });
    await this.finish(job, run, outcome, message, token);
  };

  private async finish(job: ClaimedJob, run: JobRun, outcome: RunOutcome, message: TrainingMessage, token?: string): Promise<void> {
    const { db } = this.settings;
    const { step, lastCheckpointId } = run.recorder;
    // The job's own newest checkpoint, whichever attempt saved it: what a resume would continue.
    const newest = () => db.checkpoint.findFirst({ where: { jobId: job.id }, orderBy: { step: 'desc' }, select: { id: true, step: true } });
    const saved = (c: { id: string; step: number } | null) => (c ? `newest checkpoint: step ${c.step} (${c.id})` : 'no checkpoint was saved');
    const live: JobStatus[] = ['running', 'cancelling'];
    const failed = (code: string, text: string, data: object = {}) => ({
      to: 'failed' as const,
      event: { type: 'failed', message: text, data: { error_code: code, step, ...data } },
      set: { errorCode: code, errorMessage: text, finishedAt: new Date() },
    });
    const fail = (code: string, text: string) => transitionJob(db, job.id, { from: live, ...failed(code, text) });
    // A cancel request wins over the end of training, a stop or a retry: the user was told the job would end cancelled.
    const cancelIfRequested = async () => {
      const checkpoint = await newest();
      return transitionJob(db, job.id, {
        from: ['cancelling'],
        to: 'cancelled',
        event: { type: 'cancelled', message: `cancelled at step ${step}; ${saved(checkpoint)}`, data: { step, checkpoint_id: checkpoint?.id ?? null } },
        set: { finishedAt: new Date() },
      });
    };
    /** The run's own ending, taken only while the job is still plainly running: a cancel that came first wins. */
    const endRunning = async (change: Omit<Parameters<typeof transitionJob>[2], 'from'>) => {
      if (await transitionJob(db, job.id, { from: ['running'], ...change })) return true;
      await cancelIfRequested();
      return false;
    };

    // The transitions below check the status only: make sure no other worker took the job over meanwhile.
    if (outcome.kind === 'lost' || !(await run.recorder.heartbeat())) {
      this.settings.log.warn('job was taken over by another worker; leaving it alone', { job_id: job.id });
      return;
    }
    switch (outcome.kind) {
      case 'finished':
        await endRunning({
          to: 'succeeded',
          event: { type: 'succeeded', message: `finished after ${step} steps`, data: { step, checkpoint_id: lastCheckpointId } },
          set: { finishedAt: new Date() },
        });
        return;
      case 'stopped': {
        const checkpoint = await newest();
        if (outcome.reason === 'max_runtime') {
          // The limit as the row has it now: it is read live, and may have changed since the claim.
          const limit = (await db.job.findUnique({ where: { id: job.id }, select: { maxRuntimeS: true } }))?.maxRuntimeS;
          const text = `the job ran longer than max_runtime_s (${limit} s); stopped at step ${step}; ${saved(checkpoint)}`;
          if (await endRunning(failed('max_runtime_exceeded', text, { checkpoint_id: checkpoint?.id ?? null }))) throw new UnrecoverableError(text);
          return;
        }
        const requeued = await endRunning({
          to: 'queued',
          event: {
            type: 'requeued',
            message: `worker ${this.settings.workerId} is shutting down; the job goes back to the queue at step ${step}; ${saved(checkpoint)}`,
            data: { reason: 'shutdown', step, checkpoint_id: checkpoint?.id ?? null },
          },
          set: { workerId: null },
        });
        if (requeued) return giveBack(message, token);
        return;
      }
      case 'failed': {
        if (outcome.userError) {
          await fail(outcome.code, outcome.message);
          throw new UnrecoverableError(outcome.message);
        }
        if (await cancelIfRequested()) return;
        const attempt = message.attemptsMade + 1;
        const attempts = message.opts.attempts ?? 1;
        if (attempt >= attempts) {
          await fail('infrastructure_error', outcome.message);
          throw new UnrecoverableError(outcome.message);
        }
        await transitionJob(db, job.id, {
          from: ['running'],
          to: 'queued',
          event: {
            type: 'retrying',
            message: `attempt ${attempt} of ${attempts} failed (${outcome.message}); retrying`,
            data: { attempt, max_attempts: attempts, error: outcome.message, step },
          },
          set: { workerId: null },
        });
        // BullMQ retries it after its backoff.
        throw new Error(outcome.message);
      }
    }
  }
}

/** Back to the front of the queue for any worker, without using one of its attempts. */
async function giveBack(message: TrainingMessage, token?: string): Promise<never> {
  await message.moveToWait(token);
  throw new WaitingError();
}
