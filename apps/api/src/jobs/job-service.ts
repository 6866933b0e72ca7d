import { createHash, randomInt } from 'node:crypto';
import {
  hyperparameterWarnings,
  resolveHyperparameters,
  totalSteps,
  type Checkpoint,
  type CreatedJob,
  type CreateJobRequest,
  type FieldWarning,
  type HyperparametersInput,
  type Job,
  type JobEvent,
  type JobPreview,
  type MetricsResponse,
  type Page,
  type ResolvedHyperparameters,
} from '@moco/contracts';
import { newId, TERMINAL_STATUSES, type DatasetModel, type JobModel } from '@moco/db';
import { addTraining, type TrainingQueue } from '@moco/queue';
import type { FastifyBaseLogger } from 'fastify';
import pg from 'pg';
import type { Counter } from 'prom-client';
import type { z } from 'zod';
import type { DatasetRepository } from '../datasets/dataset-repository.js';
import { ApiError, invalidParameter, invalidParameters, notFound } from '../shared/api-error.js';
import { toPage } from '../shared/pagination.js';
import type { Principal } from '../shared/scope.js';
import { withTimeout } from '@moco/service';
import type { InsertOutcome, JobFilter, JobRepository } from './job-repository.js';
import { ReadyDatasets } from './ready-datasets.js';
import type { CheckFitsWorkers } from './worker-memory.js';
import { toCheckpointResource, toEventResource, toJobResource, toSeries } from './job-resources.js';

export type CreateJobBody = z.output<typeof CreateJobRequest>;

/** Redis calls made while answering a request wait at most this long (BullMQ queues commands while Redis is away). */
export const REDIS_TIMEOUT_MS = 2_000;

export interface JobServiceDeps {
  repo: JobRepository;
  datasets: DatasetRepository;
  queue: TrainingQueue;
  log: FastifyBaseLogger;
  jobsCreated: Counter;
  /** Refuses (422) a job whose training step would not fit the workers' memory. */
  fitsWorkers: CheckFitsWorkers;
}

/** What a new job row needs besides its identity. */
interface JobPlan {
  datasetId: string;
  evalDatasetId: string | null;
  hyperparameters: ResolvedHyperparameters;
  totalSteps: number;
  seed: number;
  initCheckpointId: string | null;
  warnings: FieldWarning[];
}

/** JSON with object keys sorted, so equal bodies hash equal whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A unique index (here: project + idempotency key) refused the row (the insert runs on node-postgres). */
function isUniqueViolation(err: unknown): boolean {
  return err instanceof pg.DatabaseError && err.code === '23505';
}

export type JobService = ReturnType<typeof createJobService>;

export function createJobService({ repo, datasets, queue, log, jobsCreated, fitsWorkers }: JobServiceDeps) {
  const readyDatasets = new ReadyDatasets((projectId, id) => datasets.findById(projectId, id));

  /** `fresh`: read the row again rather than trust the cache. */
  async function readyDataset(projectId: string, id: string, param: string, fresh: boolean): Promise<DatasetModel> {
    const ds = await readyDatasets.find(projectId, id, fresh);
    if (!ds) throw invalidParameter(param, `no dataset ${id} in this project`);
    if (ds.status !== 'ready') throw invalidParameter(param, `dataset ${id} is ${ds.status}, not ready`);
    return ds;
  }

  /** Validates the request against the datasets (and the checkpoint it continues) and resolves the hyperparameters. */
  async function plan(projectId: string, body: CreateJobBody, fresh: boolean): Promise<JobPlan> {
    let input: HyperparametersInput = body.hyperparameters ?? {};
    let datasetId = body.dataset_id;
    let evalDatasetId = body.eval_dataset_id;
    let seed = body.seed;
    let initCheckpointId: string | null = null;
    if (body.from_checkpoint_id !== undefined) {
      const checkpoint = await repo.findCheckpoint(projectId, body.from_checkpoint_id);
      if (!checkpoint) throw invalidParameter('from_checkpoint_id', `no checkpoint ${body.from_checkpoint_id} in this project`);
      const source = checkpoint.job;
      const { epochs, ...others } = input;
      const changed = Object.keys(others);
      if (changed.length > 0) {
        throw invalidParameters(
          changed.map((field) => ({
            param: `hyperparameters.${field}`,
            message: `only epochs can be set when continuing a checkpoint (the rest comes from job ${source.id})`,
          })),
        );
      }
      const sourceHyperparameters = source.hyperparameters as ResolvedHyperparameters;
      input = { ...sourceHyperparameters, epochs: epochs ?? sourceHyperparameters.epochs };
      if (input.epochs! <= checkpoint.epoch) {
        throw invalidParameter('hyperparameters.epochs', `must exceed the checkpoint's epoch (${checkpoint.epoch})`);
      }
      datasetId ??= source.datasetId;
      evalDatasetId ??= source.evalDatasetId ?? undefined;
      seed ??= source.seed;
      initCheckpointId = checkpoint.id;
    }
    if (datasetId === undefined) throw invalidParameter('dataset_id', 'required (unless from_checkpoint_id is given)');
    const dataset = await readyDataset(projectId, datasetId, 'dataset_id', fresh);
    if (body.early_stopping && evalDatasetId === undefined) {
      throw invalidParameter('early_stopping', 'needs a labelled eval_dataset_id: it stops on the evaluation of each epoch');
    }
    if (evalDatasetId !== undefined) {
      const evalDataset = await readyDataset(projectId, evalDatasetId, 'eval_dataset_id', fresh);
      if (!evalDataset.labelled) throw invalidParameter('eval_dataset_id', 'must be labelled: the kNN monitor needs labels');
      if (evalDataset.channels !== dataset.channels) {
        throw invalidParameter(
          'eval_dataset_id',
          `has ${evalDataset.channels} channels but the training dataset has ${dataset.channels}`,
        );
      }
    }
    const shape = { height: dataset.height!, width: dataset.width!, channels: dataset.channels!, imageCount: dataset.imageCount! };
    const { value, problems, warnings } = resolveHyperparameters(input, shape);
    if (problems.length > 0) throw invalidParameters(problems.map((p) => ({ param: p.field, message: p.message })));
    fitsWorkers(value, shape.channels);
    return {
      datasetId,
      evalDatasetId: evalDatasetId ?? null,
      hyperparameters: value,
      totalSteps: totalSteps(value, shape.imageCount),
      seed: seed ?? randomInt(0, 2 ** 31 - 1),
      initCheckpointId,
      warnings,
    };
  }

  /** A replayed create answers with the warnings its job was created with. */
  async function warningsOf(job: JobModel): Promise<FieldWarning[]> {
    const dataset = await datasets.findById(job.projectId, job.datasetId);
    return dataset ? hyperparameterWarnings(job.hyperparameters as ResolvedHyperparameters, dataset.imageCount!) : [];
  }

  async function replay(prior: JobModel, requestHash: string): Promise<{ job: CreatedJob; replayed: true }> {
    if (prior.requestHash !== requestHash) {
      throw new ApiError(
        409,
        'idempotency_conflict',
        `Idempotency-Key ${prior.idempotencyKey} was used for a different request (job ${prior.id})`,
        'idempotency-key',
      );
    }
    return { job: { ...toJobResource(prior), warnings: await warningsOf(prior) }, replayed: true };
  }

  async function findJob(projectId: string | undefined, id: string): Promise<JobModel> {
    const row = await repo.findById(projectId, id);
    if (!row) throw notFound('job', id);
    return row;
  }

  return {
    findJob,

    /** The job `create` would make of `body` (the same checks and recipe), without making it. */
    async preview(principal: Principal, body: CreateJobBody): Promise<JobPreview> {
      const p = await plan(principal.projectId, body, false);
      return {
        project_id: principal.projectId,
        dataset_id: p.datasetId,
        eval_dataset_id: p.evalDatasetId,
        hyperparameters: p.hyperparameters,
        total_steps: p.totalSteps,
        steps_per_epoch: p.totalSteps / p.hyperparameters.epochs,
        warnings: p.warnings,
      };
    },

    /**
     * Creates the job (row, `created` event and a `warning` event per known-bad setting, one statement) and enqueues it. With an
     * idempotency key, a repeat of the same body returns the first job (replayed) and a different
     * body is a conflict; two concurrent requests race on the unique (project, key) index and the
     * loser returns the winner's job.
     */
    async create(principal: Principal, body: CreateJobBody, idempotencyKey?: string): Promise<{ job: CreatedJob; replayed: boolean }> {
      const projectId = principal.projectId;
      const requestHash = idempotencyKey === undefined ? null : createHash('sha256').update(canonicalJson(body)).digest('hex');
      if (idempotencyKey !== undefined) {
        const prior = await repo.findByIdempotencyKey(projectId, idempotencyKey);
        if (prior) return replay(prior, requestHash!);
      }
      /** Plans (from cached datasets unless `fresh`) and inserts; the insert re-checks the key and the datasets. */
      const planAndInsert = async (fresh: boolean): Promise<{ outcome: InsertOutcome; warnings: FieldWarning[] }> => {
        const p = await plan(projectId, body, fresh);
        const job = {
          id: newId('job'),
          projectId,
          datasetId: p.datasetId,
          evalDatasetId: p.evalDatasetId,
          status: 'queued' as const,
          hyperparameters: p.hyperparameters,
          seed: p.seed,
          metadata: body.metadata ?? {},
          checkpointEvery: body.checkpoint_every,
          maxRuntimeS: body.max_runtime_s ?? null,
          initCheckpointId: p.initCheckpointId,
          earlyStopping: body.early_stopping ?? null,
          collapse: body.collapse ?? null,
          idempotencyKey: idempotencyKey ?? null,
          requestHash,
          totalSteps: p.totalSteps,
        };
        const events = [
          { type: 'created' as const, message: 'job created', data: { status: 'queued' as const } },
          ...p.warnings.map((w) => ({ type: 'warning' as const, message: `${w.field} ${w.message}`, data: { ...w } })),
        ];
        return { outcome: await repo.insertWithEvents(job, events, principal.keyId), warnings: p.warnings };
      };
      let outcome: InsertOutcome;
      let warnings: FieldWarning[];
      try {
        ({ outcome, warnings } = await planAndInsert(false));
        // A cached dataset is gone: planning from fresh rows names the reason.
        if (outcome.keyUsable && !outcome.datasetsReady) ({ outcome, warnings } = await planAndInsert(true));
      } catch (err) {
        if (idempotencyKey !== undefined && isUniqueViolation(err)) {
          const winner = await repo.findByIdempotencyKey(projectId, idempotencyKey);
          if (winner) return replay(winner, requestHash!);
        }
        throw err;
      }
      // Revoked (or expired) after the key was cached, before the notification reached this process.
      if (!outcome.keyUsable) throw new ApiError(401, 'unauthorized', 'invalid or revoked API key');
      if (!outcome.job) throw invalidParameter('dataset_id', 'a dataset of this job was deleted while it was created');
      const row = outcome.job;
      jobsCreated.inc();
      try {
        // The id is new, so no message can exist under it yet (enqueueTraining's check is not needed).
        await withTimeout(addTraining(queue, row.id), REDIS_TIMEOUT_MS, 'enqueue');
      } catch (err) {
        // Postgres is the source of truth: the job stays queued there, and the worker's reconciler
        // enqueues queued jobs that have no message, so the client still gets its job.
        log.warn({ err, jobId: row.id }, 'could not enqueue the job now; the reconciler will');
      }
      return { job: { ...toJobResource(row), warnings }, replayed: false };
    },

    async get(projectId: string | undefined, id: string): Promise<Job> {
      return toJobResource(await findJob(projectId, id));
    },

    async list(projectId: string | undefined, filter: JobFilter, query: { limit: number; after?: string }): Promise<Page<Job>> {
      const rows = await repo.list(projectId, filter, query.after, query.limit + 1);
      return toPage(rows, query.limit, (r) => r.id, toJobResource);
    },

    /**
     * A queued job is cancelled at once (and its queue message removed); a running one becomes
     * cancelling, which its worker notices, checkpoints and finishes. Retried when the job's status
     * changes under us (the worker starting it meanwhile). `projectId` undefined: any project's job (admin).
     */
    async cancel(projectId: string | undefined, id: string): Promise<{ job: Job; accepted: boolean }> {
      for (let attempt = 0; attempt < 3; attempt++) {
        const row = await findJob(projectId, id);
        const now = new Date();
        if (row.status === 'cancelling') return { job: toJobResource(row), accepted: true };
        if ((TERMINAL_STATUSES as readonly string[]).includes(row.status)) {
          throw new ApiError(409, 'job_finished', `job ${id} has already ${row.status === 'cancelled' ? 'been cancelled' : row.status}`);
        }
        if (row.status === 'queued') {
          const done = await repo.transition(id, {
            from: ['queued'],
            to: 'cancelled',
            event: { type: 'cancelled', message: 'cancelled before it started' },
            set: { cancelRequestedAt: now, finishedAt: now },
          });
          if (done) {
            // A worker that already took the message finds the job cancelled in Postgres and drops it.
            await withTimeout(queue.remove(id), REDIS_TIMEOUT_MS, 'queue remove').catch((err: unknown) =>
              log.warn({ err, jobId: id }, 'could not remove the queue message of a cancelled job'),
            );
            return { job: toJobResource(await findJob(projectId, id)), accepted: false };
          }
        } else if (row.status === 'running') {
          const done = await repo.transition(id, {
            from: ['running'],
            to: 'cancelling',
            event: { type: 'cancel_requested', message: 'cancel requested; the worker saves a checkpoint and stops' },
            set: { cancelRequestedAt: now },
          });
          if (done) return { job: toJobResource(await findJob(projectId, id)), accepted: true };
        }
      }
      throw new Error(`job ${id} kept changing status while being cancelled`);
    },

    async events(projectId: string | undefined, id: string, after: number, limit: number): Promise<Page<JobEvent>> {
      await findJob(projectId, id);
      const rows = await repo.events(id, after, limit + 1);
      return toPage(rows, limit, (r) => String(r.id), toEventResource);
    },

    async metrics(
      projectId: string | undefined,
      id: string,
      q: { name?: string[]; from_step?: number; to_step?: number; limit: number },
    ): Promise<MetricsResponse> {
      await findJob(projectId, id);
      const rows = await repo.metricSeries(id, { names: q.name, fromStep: q.from_step, toStep: q.to_step, perSeries: q.limit });
      const series = toSeries(rows);
      // A series with limit + 1 points was cut: the rest starts after its limit-th point.
      const cutAt = series.filter((s) => s.points.length > q.limit).map((s) => s.points[q.limit - 1]![0] + 1);
      for (const s of series) s.points.splice(q.limit);
      return {
        job_id: id,
        data: series,
        has_more: cutAt.length > 0,
        next_from_step: cutAt.length > 0 ? Math.min(...cutAt) : null,
      };
    },

    async checkpoints(projectId: string | undefined, id: string, query: { limit: number; after?: string }): Promise<Page<Checkpoint>> {
      await findJob(projectId, id);
      const rows = await repo.checkpoints(id, query.after, query.limit + 1);
      return toPage(rows, query.limit, (r) => r.id, toCheckpointResource);
    },
  };
}
