import { transitionJob, type JobStatus } from '@moco/db';
import type { QueuePayloads } from '@moco/queue';
import { DelayedError, UnrecoverableError, WaitingError, type Job as Message } from 'bullmq';
import { claimJob, type ClaimedJob } from './claim.js';
import { JobRun, type RunOutcome, type RunSettings } from './job-run.js';
import { errorMessage } from './log.js';
import { UserError } from './protocol.js';
import type { RunEnding } from './worker-metrics.js';

export type TrainingMessage = Message<QueuePayloads['training']>;

export interface ProcessorSettings extends RunSettings {
  lockDurationMs: number;
  /** How long a running trainer may report nothing before the worker counts as unready. */
  trainerSilenceMs: number;
}

/** How finishing a run left the job, and what BullMQ must then be told (by a throw), if anything. */
interface Finish {
  ending: RunEnding;
  errorCode?: string;
  settle?: () => Promise<never>;
}

const throwing = (err: Error) => () => Promise.reject(err);

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

  /** The readiness check of the running job's trainer (see JobRun.checkTrainer); passes when idle. */
  checkTrainer(): void {
    this.active?.checkTrainer(this.settings.trainerSilenceMs);
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
    this.settings.metrics.running(true);
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
      this.settings.metrics.running(false);
    }
    log.info('job run ended', { job_id: jobId, outcome: outcome.kind, ...('reason' in outcome ? { reason: outcome.reason } : {}) });
    const { ending, errorCode, settle } = await this.finish(job, run, outcome, message, token);
    this.settings.metrics.ended(ending, errorCode);
    await settle?.();
  };

  private async finish(job: ClaimedJob, run: JobRun, outcome: RunOutcome, message: TrainingMessage, token?: string): Promise<Finish> {
    const { db } = this.settings;
    const { step, lastCheckpointId, bestCheckpointId } = run.recorder;
    // The job's own newest checkpoint, whichever attempt saved it: what a resume would continue.
    const newest = () => db.checkpoint.findFirst({ where: { jobId: job.id }, orderBy: { step: 'desc' }, select: { id: true, step: true } });
    const saved = (c: { id: string; step: number } | null) => (c ? `newest checkpoint: step ${c.step} (${c.id})` : 'no checkpoint was saved');
    const live: JobStatus[] = ['running', 'cancelling'];
    const failed = (code: string, text: string, data: object = {}) => ({
      to: 'failed' as const,
      event: { type: 'failed' as const, message: text, data: { error_code: code, step, ...data } },
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
    /**
     * The run's own ending, taken only while the job is still plainly running: a cancel that came
     * first wins; and a job that is neither is no longer this run's to end.
     */
    const endRunning = async (ending: RunEnding, change: Omit<Parameters<typeof transitionJob>[2], 'from'>): Promise<RunEnding | null> => {
      if (await transitionJob(db, job.id, { from: ['running'], ...change })) return ending;
      return (await cancelIfRequested()) ? 'cancelled' : null;
    };
    const lost: Finish = { ending: 'lost' };

    // The transitions below check the status only: make sure no other worker took the job over meanwhile.
    if (outcome.kind === 'lost' || !(await run.recorder.heartbeat())) {
      this.settings.log.warn('job was taken over by another worker; leaving it alone', { job_id: job.id });
      return lost;
    }
    switch (outcome.kind) {
      case 'finished': {
        const ending = await endRunning('succeeded', {
          to: 'succeeded',
          event: { type: 'succeeded', message: `finished after ${step} steps`, data: { step, checkpoint_id: lastCheckpointId, best_checkpoint_id: bestCheckpointId } },
          set: { finishedAt: new Date() },
        });
        return ending ? { ending } : lost;
      }
      case 'early_stopped': {
        const { metric, best, bestStep, patience, epoch } = outcome;
        await run.recorder.event({
          type: 'early_stopped',
          message: `stopped early after epoch ${epoch}: ${metric} has not improved for ${patience} evaluation(s); best ${best.toFixed(4)} at step ${bestStep}`,
          data: { step, epoch, metric, best, best_step: bestStep, best_checkpoint_id: bestCheckpointId, patience },
        });
        const ending = await endRunning('succeeded', {
          to: 'succeeded',
          event: {
            type: 'succeeded',
            message: `stopped early after ${step} steps`,
            data: { step, checkpoint_id: lastCheckpointId, best_checkpoint_id: bestCheckpointId },
          },
          set: { finishedAt: new Date() },
        });
        return ending ? { ending } : lost;
      }
      case 'collapsed': {
        const code = 'collapsed';
        const std = outcome.featureStd;
        const text =
          `training collapsed: feature_std ${Number.isFinite(std) ? std.toPrecision(3) : std} at step ${outcome.step}, ` +
          `below the threshold ${outcome.threshold} for ${outcome.steps} consecutive steps`;
        await run.recorder.event({
          type: 'collapsed',
          message: text,
          data: { step: outcome.step, feature_std: Number.isFinite(std) ? std : null, threshold: outcome.threshold, steps: outcome.steps },
        });
        const checkpoint = await newest();
        const ending = await endRunning('failed', failed(code, text, { checkpoint_id: checkpoint?.id ?? null }));
        if (ending === 'failed') return { ending, errorCode: code, settle: throwing(new UnrecoverableError(text)) };
        return ending ? { ending } : lost;
      }
      case 'stopped': {
        const checkpoint = await newest();
        if (outcome.reason === 'max_runtime') {
          // The limit as the row has it now: it is read live, and may have changed since the claim.
          const limit = (await db.job.findUnique({ where: { id: job.id }, select: { maxRuntimeS: true } }))?.maxRuntimeS;
          const code = 'max_runtime_exceeded';
          const text = `the job ran longer than max_runtime_s (${limit} s); stopped at step ${step}; ${saved(checkpoint)}`;
          const ending = await endRunning('failed', failed(code, text, { checkpoint_id: checkpoint?.id ?? null }));
          if (ending === 'failed') return { ending, errorCode: code, settle: throwing(new UnrecoverableError(text)) };
          return ending ? { ending } : lost;
        }
        const ending = await endRunning('requeued', {
          to: 'queued',
          event: {
            type: 'requeued',
            message: `worker ${this.settings.workerId} is shutting down; the job goes back to the queue at step ${step}; ${saved(checkpoint)}`,
            data: { reason: 'shutdown', step, checkpoint_id: checkpoint?.id ?? null },
          },
          set: { workerId: null },
        });
        if (ending === 'requeued') return { ending, settle: () => giveBack(message, token) };
        return ending ? { ending } : lost;
      }
      case 'failed': {
        const errorCode = outcome.code;
        if (outcome.userError) {
          await fail(errorCode, outcome.message);
          return { ending: 'failed', errorCode, settle: throwing(new UnrecoverableError(outcome.message)) };
        }
        if (await cancelIfRequested()) return { ending: 'cancelled', errorCode };
        const attempt = message.attemptsMade + 1;
        const attempts = message.opts.attempts ?? 1;
        if (attempt >= attempts) {
          await fail(errorCode, outcome.message);
          return { ending: 'failed', errorCode, settle: throwing(new UnrecoverableError(outcome.message)) };
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
        return { ending: 'requeued', errorCode, settle: throwing(new Error(outcome.message)) };
      }
    }
  }
}

/** Back to the front of the queue for any worker, without using one of its attempts. */
async function giveBack(message: TrainingMessage, token?: string): Promise<never> {
  await message.moveToWait(token);
  throw new WaitingError();
}
