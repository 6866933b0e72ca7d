import {
  CollapseGuard,
  EarlyStopping,
  type BackendName,
  type ChildMessage,
  type DatasetLocation,
  type ObjectStoreConfig,
  type RunEnding as TrainerEnding,
  type StartMessage,
} from '@moco/contracts';
import type { Db } from '@moco/db';
import { cachedBaselines, saveBaselines } from './baselines.js';
import type { ClaimedJob } from './claim.js';
import type { DatasetCache } from './dataset-cache.js';
import { errorMessage, type Logger } from './log.js';
import { checkpointPrefix, UserError } from './protocol.js';
import { LostJobError, RunRecorder } from './run-recorder.js';
import { TrainerProcess } from './trainer-process.js';
import type { WorkerMetrics } from './worker-metrics.js';

/** How often a run beats its heartbeat (a write; other workers take a job over once it is stale). */
const HEARTBEAT_MS = 1_000;
/**
 * How often a run looks for a cancel request or an exceeded runtime (counted from the job's first
 * start, so requeues and retries cannot stretch it): a read, often enough that a stop lands well
 * within 2 s of its request.
 */
const STOP_POLL_MS = 250;
/** How often buffered metric rows are written when fewer than a batch arrive. */
const FLUSH_MS = 1_000;

export interface RunSettings {
  db: Db;
  log: Logger;
  workerId: string;
  storage: ObjectStoreConfig;
  cache: DatasetCache;
  backend: BackendName | 'auto';
  /** The same dataset limits the API validated with. */
  limits: StartMessage['limits'];
  metrics: WorkerMetrics;
}

export type StopReason = 'cancel' | 'shutdown' | 'max_runtime';

export type RunOutcome =
  | { kind: 'finished' }
  /** The run ended itself: no improvement for its patience, or its features collapsed. */
  | Extract<TrainerEnding, { kind: 'early_stopped' | 'collapsed' }>
  | { kind: 'stopped'; reason: StopReason }
  | { kind: 'failed'; userError: boolean; code: string; message: string }
  /** Another worker holds the job now: write nothing more. */
  | { kind: 'lost' };

/**
 * One attempt at a claimed job: a trainer child does the work, and this side records its reports
 * (in order), beats the heartbeat, and asks the child to stop when the job is cancelled, runs out
 * of time or the worker shuts down.
 */
export class JobRun {
  readonly recorder: RunRecorder;
  private stopReason: StopReason | null = null;
  private child: TrainerProcess | null = null;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private result: Extract<ChildMessage, { type: 'done' | 'failed' }> | null = null;
  /** The child reported its model: it trains, and a stop waits for its step and checkpoint. */
  private training = false;
  private discarding = false;
  private readonly asking = new Set<'heartbeat' | 'wants'>();
  /** When the trainer child last reported (or was started), and whether it has exited. */
  private lastReport = performance.now();
  private exited = false;

  constructor(
    private readonly settings: RunSettings,
    private readonly job: ClaimedJob,
    onProgress: (step: number, epoch: number) => void,
  ) {
    this.recorder = new RunRecorder(settings.db, settings.workerId, { ...job, latestMetrics: job.latestMetrics as Record<string, number> }, onProgress);
  }

  /** Stops between steps with a checkpoint; the first reason given is the one reported (and the child is asked once). */
  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    if (this.child) this.stopChild(this.child);
  }

  private stopChild(child: TrainerProcess): void {
    if (this.training) return child.stop();
    // Still starting or loading (which can take seconds): nothing is trained, so nothing needs
    // saving. Whatever it reports from now on is dropped, so that a step it raced to finish
    // meanwhile (without a checkpoint) is not recorded either: a resume will do it again.
    this.result = { type: 'done', ending: { kind: 'stopped' } };
    this.discarding = true;
    child.kill();
  }

  async execute(): Promise<RunOutcome> {
    const start = await startMessage(this.settings, this.job);
    if (start.baselines) this.enqueue(() => this.recorder.baselines(start.baselines!));
    this.lastReport = performance.now();
    this.child = new TrainerProcess(
      start,
      (message) => {
        this.lastReport = performance.now();
        if (this.discarding) return;
        if (message.type === 'ready') this.training = true;
        this.settings.metrics.report(message);
        this.enqueue(() => this.onMessage(message));
      },
      (err) => {
        this.failure ??= err;
      },
    );
    if (this.stopReason) this.stopChild(this.child);
    const flush = setInterval(() => this.enqueue(() => this.recorder.flush()), FLUSH_MS);
    const beat = setInterval(() => void this.check('heartbeat'), HEARTBEAT_MS);
    const poll = setInterval(() => void this.check('wants'), STOP_POLL_MS);
    const exit = await this.child.closed;
    this.exited = true;
    for (const timer of [flush, beat, poll]) clearInterval(timer);
    // The rows reported since the last flush, whatever the ending.
    this.enqueue(() => this.recorder.flush());
    await this.chain;
    if (this.failure instanceof LostJobError) return { kind: 'lost' };
    if (this.failure) throw this.failure;
    const result = this.result;
    if (!result) throw new Error(`the trainer process ended (${exit.signal ?? `exit code ${exit.code}`}) without a result`);
    if (result.type === 'failed') return { kind: 'failed', userError: result.userError, code: result.code, message: result.message };
    const { ending } = result;
    if (ending.kind === 'completed') return { kind: 'finished' };
    if (ending.kind === 'stopped') return { kind: 'stopped', reason: this.stopReason ?? 'shutdown' };
    return ending;
  }

  /**
   * Throws when the trainer child is alive but has reported nothing (ready, step, epoch, checkpoint)
   * for `silentMs`: hung, or stopped. A child that exited is no hang: the run is ending.
   */
  checkTrainer(silentMs: number): void {
    if (!this.child || this.exited) return;
    const silent = performance.now() - this.lastReport;
    if (silent > silentMs) throw new Error(`the trainer of job ${this.job.id} has reported nothing for ${Math.round(silent / 1000)} s`);
  }

  /** Child reports are written one after another; the first failed write ends the run. */
  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await task();
      } catch (err) {
        this.failure = err;
        this.child?.kill();
      }
    });
  }

  private async onMessage(message: ChildMessage): Promise<void> {
    if (message.type === 'done' || message.type === 'failed') this.result = message;
    else if (message.type === 'baselines') {
      await saveBaselines(this.settings.db, this.job, message.baselines, message.evalImages);
      await this.recorder.baselines(message.baselines);
    } else await this.recorder.record(message);
  }

  /** Acts on what the job's row asks for, read by the heartbeat or by a read between beats; one of each at a time. */
  private async check(ask: 'heartbeat' | 'wants'): Promise<void> {
    if (this.asking.has(ask)) return;
    this.asking.add(ask);
    try {
      const wants = await this.recorder[ask]();
      if (!wants) {
        this.failure ??= new LostJobError(`job ${this.job.id} was taken over by another worker`);
        this.child?.kill();
      } else if (wants.cancelling) {
        this.stop('cancel');
      } else if (wants.overtime) {
        this.stop('max_runtime');
      }
    } catch (err) {
      // A Postgres hiccup: the next look tries again, and a failed metrics write ends the run.
      this.settings.log.warn(`job ${ask} check failed`, { job_id: this.job.id, error: errorMessage(err) });
    } finally {
      this.asking.delete(ask);
    }
  }
}

/** What the trainer child needs: datasets, the job's settings, and the checkpoint to continue, if any. */
async function startMessage(settings: RunSettings, job: ClaimedJob): Promise<StartMessage> {
  for (const ds of [job.dataset, job.evalDataset]) {
    if (ds && ds.status !== 'ready') throw new UserError('dataset_not_ready', `dataset ${ds.id} is ${ds.status}, not ready`);
  }
  // The newest checkpoint of this job, else the checkpoint it was started from, else none.
  const own = await settings.db.checkpoint.findFirst({ where: { jobId: job.id }, orderBy: { step: 'desc' }, select: { objectKey: true, step: true } });
  const init =
    !own && job.initCheckpointId
      ? await settings.db.checkpoint.findUnique({ where: { id: job.initCheckpointId }, select: { objectKey: true } })
      : null;
  if (!own && job.initCheckpointId && !init) throw new UserError('checkpoint_not_found', `checkpoint ${job.initCheckpointId} does not exist`);
  const location = (ds: NonNullable<ClaimedJob['evalDataset']>): DatasetLocation => ({ id: ds.id, objectKey: ds.objectKey, uri: ds.uri });
  const earlyStopping = job.earlyStopping === null ? null : EarlyStopping.parse(job.earlyStopping);
  // This job's evaluations up to the state it resumes (of the metric that picks its best checkpoint).
  const evaluations = own
    ? await settings.db.metric.findMany({
        where: { jobId: job.id, name: earlyStopping?.metric ?? 'knn_accuracy', step: { lte: own.step } },
        orderBy: { step: 'asc' },
        select: { step: true, value: true },
      })
    : [];
  return {
    type: 'start',
    storage: settings.storage,
    cache: settings.cache,
    backend: settings.backend,
    train: location(job.dataset),
    eval: job.evalDataset ? location(job.evalDataset) : null,
    channels: job.dataset.channels === 1 ? 1 : 3,
    hyperparameters: job.hyperparameters,
    seed: job.seed,
    limits: settings.limits,
    checkpointEvery: job.checkpointEvery,
    checkpointPrefix: checkpointPrefix(job.projectId, job.id),
    resumeKey: (own ?? init)?.objectKey ?? null,
    earlyStopping,
    collapse: job.collapse === null ? null : CollapseGuard.parse(job.collapse),
    evaluations,
    baselines: await cachedBaselines(settings.db, job),
  };
}
