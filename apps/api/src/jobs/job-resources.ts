import { checkpointDownloads, type Checkpoint, type CheckpointEncoder, type CheckpointTransform, type Job, type JobEvent, type JobStatusValue, type MetricSeries, type ResolvedHyperparameters } from '@moco/contracts';
import { JOB_STATUSES, type CheckpointModel, type JobEventModel, type JobModel } from '@moco/db';
import type { MetricRow } from './job-repository.js';

// Compile-time check: every status the database holds is one the API documents.
JOB_STATUSES satisfies readonly JobStatusValue[];

const iso = (d: Date | null) => (d ? d.toISOString() : null);
/** JSON cannot carry NaN or Infinity (a diverged loss): such values are null. */
const finiteOrNull = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function toJobResource(row: JobModel): Job {
  const hyperparameters = row.hyperparameters as ResolvedHyperparameters;
  return {
    id: row.id,
    project_id: row.projectId,
    dataset_id: row.datasetId,
    eval_dataset_id: row.evalDatasetId,
    status: row.status as JobStatusValue,
    hyperparameters,
    seed: row.seed,
    metadata: row.metadata as Record<string, string>,
    checkpoint_every: row.checkpointEvery,
    max_runtime_s: row.maxRuntimeS,
    from_checkpoint_id: row.initCheckpointId,
    // Validated against the same contracts when the job was created.
    early_stopping: row.earlyStopping as Job['early_stopping'],
    collapse: row.collapse as Job['collapse'],
    best_checkpoint_id: row.bestCheckpointId,
    progress: {
      step: row.step,
      total_steps: row.totalSteps,
      epoch: row.epoch,
      epochs: hyperparameters.epochs,
      fraction: row.totalSteps > 0 ? Math.min(1, row.step / row.totalSteps) : 0,
    },
    latest_metrics: Object.fromEntries(Object.entries(row.latestMetrics as Record<string, unknown>).map(([k, v]) => [k, finiteOrNull(v)])),
    attempts: row.attempts,
    worker_id: row.workerId,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : null,
    created_at: row.createdAt.toISOString(),
    started_at: iso(row.startedAt),
    finished_at: iso(row.finishedAt),
    cancel_requested_at: iso(row.cancelRequestedAt),
    heartbeat_at: iso(row.heartbeatAt),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function toEventResource(row: JobEventModel): JobEvent {
  return {
    id: Number(row.id),
    job_id: row.jobId,
    // Written through libs/db's addJobEvent, which checks each type's data against the same contract.
    type: row.type,
    message: row.message,
    data: row.data,
    created_at: row.createdAt.toISOString(),
  } as JobEvent;
}

export function toCheckpointResource(row: CheckpointModel): Checkpoint {
  return {
    id: row.id,
    job_id: row.jobId,
    step: row.step,
    epoch: row.epoch,
    final: row.final,
    bytes: Number(row.bytes),
    downloads: checkpointDownloads(row.id),
    metrics: row.metrics as Record<string, unknown>,
    // Written by the worker from the same contract shapes.
    transform: row.transform as CheckpointTransform,
    encoder: row.encoder as CheckpointEncoder,
    created_at: row.createdAt.toISOString(),
  };
}

/** Rows ordered by name then step (or by step) -> one series per name, in first-seen order. */
export function toSeries(rows: MetricRow[]): MetricSeries[] {
  const byName = new Map<string, MetricSeries>();
  for (const row of rows) {
    let series = byName.get(row.name);
    if (!series) byName.set(row.name, (series = { name: row.name, points: [] }));
    series.points.push([row.step, finiteOrNull(row.value)]);
  }
  return [...byName.values()];
}
