import { addJobEvent, newId, notifyJobUpdate, Prisma, type Db, type JobEventInput } from '@moco/db';
import type { Baselines, CheckpointEncoder, CheckpointTransform, ChildMessage, Evaluation } from '@moco/contracts';

type Tx = Prisma.TransactionClient;

/** Metric rows are written once this many are waiting (and at least every second, by the run's timer). */
const FLUSH_ROWS = 50;

export interface Wants {
  cancelling: boolean;
  overtime: boolean;
}

const OVERTIME = Prisma.sql`coalesce(started_at + max_runtime_s * interval '1 second' <= now(), false)`;

function toWants(row: { status: string; overtime: boolean } | undefined): Wants | null {
  return row ? { cancelling: row.status === 'cancelling', overtime: row.overtime } : null;
}

/** The row no longer names this worker: another worker took the job over (or it was finished for it). */
export class LostJobError extends Error {
  override readonly name = 'LostJobError';
}

interface MetricRow {
  name: string;
  step: number;
  epoch: number;
  value: number;
}

export interface RecordedJob {
  id: string;
  projectId: string;
  step: number;
  epoch: number;
  latestMetrics: Record<string, number>;
  bestCheckpointId: string | null;
}

/**
 * Writes what a trainer child reports to Postgres, in the order it was reported: metric rows in
 * batches (upserts, so the steps a resumed run replays overwrite and never repeat), the job's
 * progress columns, events and checkpoint rows. Each write first checks, in its transaction, that
 * the row still names this worker, so a worker that lost its job cannot overwrite its successor.
 */
export class RunRecorder {
  step: number;
  epoch: number;
  lastCheckpointId: string | null = null;
  /** The checkpoint of the job's best evaluation (of any attempt), once there is one. */
  bestCheckpointId: string | null;
  private lastCheckpoint: { id: string; step: number } | null = null;
  /** A best evaluation whose checkpoint the trainer is saving: its event waits for the checkpoint's id. */
  private bestPending: (Evaluation & { step: number; epoch: number }) | null = null;
  private readonly latest: Record<string, number>;
  private readonly pending = new Map<string, MetricRow>();
  private model: { transform: CheckpointTransform; encoder: CheckpointEncoder } | null = null;

  constructor(
    private readonly db: Db,
    private readonly workerId: string,
    private readonly job: RecordedJob,
    private readonly onProgress: (step: number, epoch: number) => void,
  ) {
    this.step = job.step;
    this.epoch = job.epoch;
    this.latest = { ...job.latestMetrics };
    this.bestCheckpointId = job.bestCheckpointId;
  }

  /** The dataset's baselines, as this job's metrics at step 0 (the job's progress does not move). */
  async baselines(b: Baselines): Promise<void> {
    for (const [name, value] of Object.entries(b)) {
      const metric = `baseline_${name}`;
      this.pending.set(`${metric}@0`, { name: metric, step: 0, epoch: 0, value });
      this.latest[metric] = value;
    }
    await this.flush();
  }

  async record(message: Exclude<ChildMessage, { type: 'done' | 'failed' | 'baselines' }>): Promise<void> {
    switch (message.type) {
      case 'ready': {
        this.model = { transform: message.transform, encoder: message.encoder };
        const { backend, images, evalImages, knnMonitor, transform, step } = message;
        const resumed = step > 0 ? `, resuming at step ${step}` : '';
        return this.event({
          type: 'dataset_loaded',
          message: `${images} training images loaded; training on ${backend.detail}${resumed}`,
          data: {
            images,
            eval_images: evalImages,
            knn_monitor: knnMonitor,
            transform: { ...transform },
            backend: { name: backend.name, detail: backend.detail, warnings: backend.warnings },
            resumed_from_step: step > 0 ? step : null,
          },
        });
      }
      case 'step': {
        const { step, epoch } = message;
        this.add(step, epoch, { loss: message.loss, lr: message.lr, pretext_accuracy: message.pretextAccuracy, feature_std: message.featureStd });
        if (this.pending.size >= FLUSH_ROWS) await this.flush();
        return;
      }
      case 'epoch': {
        const { step, epoch, loss, lr, imagesPerSecond, seconds, evaluation } = message;
        const accuracies: Record<string, number> = evaluation ? { knn_accuracy: evaluation.knnAccuracy, probe_accuracy: evaluation.probeAccuracy } : {};
        this.add(step, epoch, { epoch_loss: loss, images_per_s: imagesPerSecond, ...accuracies });
        const percent = (v: number) => `${(100 * v).toFixed(2)}%`;
        const shown = evaluation ? `, kNN accuracy ${percent(evaluation.knnAccuracy)}, linear probe ${percent(evaluation.probeAccuracy)}` : '';
        await this.event({
          type: 'epoch_completed',
          message: `epoch ${epoch} done: loss ${loss.toFixed(4)}${shown}`,
          data: { epoch, step, loss: finite(loss), lr: finite(lr), images_per_s: imagesPerSecond, seconds, knn_accuracy: evaluation?.knnAccuracy ?? null, probe_accuracy: evaluation?.probeAccuracy ?? null },
        });
        if (!evaluation) return;
        // A best evaluation at a step just checkpointed names that checkpoint; otherwise the trainer saves one next.
        if (evaluation.best && this.lastCheckpoint?.step !== step) {
          this.bestPending = { ...evaluation, step, epoch };
          return;
        }
        return this.ownerTransaction((tx) => this.evaluated(tx, { ...evaluation, step, epoch }, evaluation.best ? this.lastCheckpoint!.id : null));
      }
      case 'checkpoint':
        return this.checkpoint(message);
    }
  }

  /** Writes the waiting metric rows with the job's progress columns, in one transaction. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    const { step, epoch } = this;
    const newest = Object.fromEntries(rows.map((r) => [r.name, r.value]));
    await this.db.$transaction(async (tx) => {
      await this.checkOwner(tx);
      await tx.$executeRaw`
        INSERT INTO metrics (job_id, name, step, epoch, value)
        SELECT ${this.job.id}, r.name, r.step, r.epoch, r.value
        FROM unnest(${rows.map((r) => r.name)}::text[], ${rows.map((r) => r.step)}::int[],
                    ${rows.map((r) => r.epoch)}::int[], ${rows.map((r) => r.value)}::float8[]) AS r(name, step, epoch, value)
        ON CONFLICT (job_id, name, step) DO UPDATE SET epoch = EXCLUDED.epoch, value = EXCLUDED.value`;
      await tx.$executeRaw`
        UPDATE jobs SET step = ${step}, epoch = ${epoch}, latest_metrics = latest_metrics || ${JSON.stringify(newest)}::jsonb, updated_at = now()
        WHERE id = ${this.job.id}`;
      await notifyJobUpdate(tx, this.job.id);
    });
    this.pending.clear();
    this.onProgress(step, epoch);
  }

  /**
   * Refreshes the heartbeat and says what the row asks for (see `wants`); null when it no longer
   * names this worker (another worker took the job over, or it was finished for it).
   */
  async heartbeat(tx: Tx | Db = this.db): Promise<Wants | null> {
    const rows = await tx.$queryRaw<{ status: string; overtime: boolean }[]>`
      UPDATE jobs SET heartbeat_at = now()
      WHERE id = ${this.job.id} AND worker_id = ${this.workerId} AND status IN ('running', 'cancelling')
      RETURNING status, ${OVERTIME} AS overtime`;
    return toWants(rows[0]);
  }

  /**
   * What the row asks for, read without writing (cheap enough to ask several times a second): a
   * stop when it is `cancelling` or has run past max_runtime_s (read live, by the database's
   * clock); null when it no longer names this worker.
   */
  async wants(): Promise<Wants | null> {
    const rows = await this.db.$queryRaw<{ status: string; overtime: boolean }[]>`
      SELECT status, ${OVERTIME} AS overtime FROM jobs
      WHERE id = ${this.job.id} AND worker_id = ${this.workerId} AND status IN ('running', 'cancelling')`;
    return toWants(rows[0]);
  }

  private add(step: number, epoch: number, values: Record<string, number>): void {
    for (const [name, value] of Object.entries(values)) {
      this.pending.set(`${name}@${step}`, { name, step, epoch, value });
      this.latest[name] = value;
    }
    this.step = step;
    this.epoch = epoch;
  }

  /** Events follow the metrics they report on: a reader who sees the event finds its rows. */
  async event(event: JobEventInput): Promise<void> {
    await this.ownerTransaction((tx) => addJobEvent(tx, this.job.id, event));
  }

  private async ownerTransaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    await this.flush();
    return this.db.$transaction(async (tx) => {
      await this.checkOwner(tx);
      return work(tx);
    });
  }

  /** The `evaluated` event; a checkpoint id makes it the job's best checkpoint. */
  private async evaluated(tx: Tx, e: Evaluation & { step: number; epoch: number }, checkpointId: string | null): Promise<void> {
    if (checkpointId) {
      await tx.job.update({ where: { id: this.job.id }, data: { bestCheckpointId: checkpointId } });
      this.bestCheckpointId = checkpointId;
    }
    const best = checkpointId ? `; best so far, checkpoint ${checkpointId}` : '';
    await addJobEvent(tx, this.job.id, {
      type: 'evaluated',
      message: `epoch ${e.epoch} evaluated: kNN accuracy ${(100 * e.knnAccuracy).toFixed(2)}%, linear probe ${(100 * e.probeAccuracy).toFixed(2)}%${best}`,
      data: { step: e.step, epoch: e.epoch, checkpoint_id: checkpointId, knn_accuracy: e.knnAccuracy, probe_accuracy: e.probeAccuracy },
    });
  }

  /**
   * The metric rows up to the checkpoint's step are committed before its row, so a resume from it
   * (which replays only later steps) loses none. An upsert: the end of a run, and a stop, can
   * checkpoint the same step twice.
   */
  private async checkpoint(c: Extract<ChildMessage, { type: 'checkpoint' }>): Promise<void> {
    if (!this.model) throw new Error('a checkpoint arrived before the trainer reported its model');
    await this.flush();
    const fields = {
      epoch: c.epoch,
      final: c.final,
      objectKey: c.key,
      bytes: BigInt(c.bytes),
      metrics: { ...this.latest },
      transform: { ...this.model.transform },
      encoder: { ...this.model.encoder },
    };
    const pending = c.best ? this.bestPending : null;
    this.lastCheckpointId = await this.db.$transaction(async (tx) => {
      await this.checkOwner(tx);
      const { id } = await tx.checkpoint.upsert({
        where: { jobId_step: { jobId: this.job.id, step: c.step } },
        create: { id: newId('ckpt'), jobId: this.job.id, projectId: this.job.projectId, step: c.step, ...fields },
        update: fields,
        select: { id: true },
      });
      await addJobEvent(tx, this.job.id, {
        type: 'checkpoint_saved',
        message: `checkpoint at step ${c.step}${c.final ? ' (final)' : ''}`,
        data: { checkpoint_id: id, step: c.step, epoch: c.epoch, final: c.final, best: c.best, bytes: c.bytes },
      });
      if (pending) await this.evaluated(tx, pending, id);
      return id;
    });
    if (pending) this.bestPending = null;
    this.lastCheckpoint = { id: this.lastCheckpointId, step: c.step };
  }

  /** Locks the job row for the transaction, and stops it when the row no longer names this worker. */
  private async checkOwner(tx: Tx): Promise<void> {
    if (!(await this.heartbeat(tx))) throw new LostJobError(`job ${this.job.id} is no longer held by this worker`);
  }
}

/** JSON has no NaN: a diverged loss is null in an event's data (the metric row keeps NaN). */
function finite(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
