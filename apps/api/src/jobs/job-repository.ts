import { parseJobEventData } from '@moco/contracts';
import {
  JOB_UPDATES_CHANNEL,
  Prisma,
  sqlPool,
  transitionJob,
  type CheckpointModel,
  type Db,
  type JobEventInput,
  type JobEventModel,
  type JobModel,
  type JobStatus,
} from '@moco/db';

export interface MetricRow {
  name: string;
  step: number;
  value: number;
}

/** Every column a new job is given; the rest take their defaults. */
export interface NewJob {
  id: string;
  projectId: string;
  datasetId: string;
  evalDatasetId: string | null;
  status: JobStatus;
  hyperparameters: object;
  seed: number;
  metadata: Record<string, string>;
  checkpointEvery: number;
  maxRuntimeS: number | null;
  initCheckpointId: string | null;
  earlyStopping: object | null;
  collapse: object | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  totalSteps: number;
}

export interface JobFilter {
  statuses?: readonly string[];
  /** [key, value] pairs that must all be in the job's metadata. */
  metadata: [string, string][];
}

/** What `insertWithEvent` did: the job, or null and why (a check that failed). */
export interface InsertOutcome {
  keyUsable: boolean;
  datasetsReady: boolean;
  job: JobModel | null;
}

/** Every column of a jobs row under its JobModel name (created_at AS "createdAt"), for RETURNING. */
const JOB_COLUMNS = Object.keys(Prisma.JobScalarFieldEnum)
  .map((field) => `${field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)} AS "${field}"`)
  .join(', ');

// $1 the caller's key; $2-$17 the job's columns; $18 its events (a JSON array); $19 the channel of live readers.
const INSERT_JOB_WITH_EVENT = `
  WITH allowed AS (
    SELECT
      EXISTS (SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS key_usable,
      EXISTS (SELECT 1 FROM datasets WHERE id = $4 AND project_id = $3 AND status = 'ready')
        AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM datasets WHERE id = $5 AND project_id = $3 AND status = 'ready')) AS datasets_ready
  ), job AS (
    INSERT INTO jobs (id, project_id, dataset_id, eval_dataset_id, status, hyperparameters, seed, metadata,
                      checkpoint_every, max_runtime_s, init_checkpoint_id, early_stopping, collapse, idempotency_key, request_hash, total_steps)
    SELECT $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10, $11, $12, $13::jsonb, $14::jsonb, $15, $16, $17
    FROM allowed WHERE key_usable AND datasets_ready
    RETURNING ${JOB_COLUMNS}
  ), event AS (
    INSERT INTO job_events (job_id, type, message, data)
    SELECT job.id, e.value->>'type', e.value->>'message', e.value->'data'
    FROM job, jsonb_array_elements($18::jsonb) WITH ORDINALITY AS e(value, n)
    ORDER BY e.n
  )
  SELECT a.key_usable AS "keyUsable", a.datasets_ready AS "datasetsReady", j.*
  FROM allowed a LEFT JOIN (SELECT job.* FROM job CROSS JOIN LATERAL pg_notify($19, job.id) AS woken) j ON true`;

export type JobRepository = ReturnType<typeof createJobRepository>;

const jsonOrNull = (value: object | null) => (value === null ? null : JSON.stringify(value));

const inProject = (projectId: string | undefined) => (projectId === undefined ? {} : { projectId });

export function createJobRepository(db: Db) {
  return {
    /**
     * The job, its events (`created`, then any warnings) and the wake-up of live readers, in one
     * statement (so atomically),
     * provided the caller's key is still usable and the datasets are ready in the project: the
     * caller may have read both from its caches, and a revocation must never let a job in. One
     * round trip of a prepared statement on Prisma's own pool, because it is the hot path of job
     * submission and Prisma's work per query costs more than the statement (bench:api).
     */
    async insertWithEvents(job: NewJob, events: readonly JobEventInput[], keyId: string): Promise<InsertOutcome> {
      const { rows } = await sqlPool(db).query<InsertOutcome & Partial<JobModel>>({
        name: 'insert-job-with-events',
        text: INSERT_JOB_WITH_EVENT,
        values: [
          keyId, job.id, job.projectId, job.datasetId, job.evalDatasetId, job.status, JSON.stringify(job.hyperparameters), job.seed,
          JSON.stringify(job.metadata), job.checkpointEvery, job.maxRuntimeS, job.initCheckpointId, jsonOrNull(job.earlyStopping),
          jsonOrNull(job.collapse), job.idempotencyKey, job.requestHash, job.totalSteps,
          JSON.stringify(events.map((e) => ({ type: e.type, message: e.message, data: parseJobEventData(e.type, e.data ?? {}) }))),
          JOB_UPDATES_CHANNEL,
        ],
      });
      const { keyUsable, datasetsReady, ...created } = rows[0]!;
      return { keyUsable, datasetsReady, job: created.id == null ? null : (created as JobModel) };
    },

    findById(projectId: string | undefined, id: string): Promise<JobModel | null> {
      return db.job.findFirst({ where: { id, ...inProject(projectId) } });
    },

    findByIdempotencyKey(projectId: string, idempotencyKey: string): Promise<JobModel | null> {
      return db.job.findUnique({ where: { projectId_idempotencyKey: { projectId, idempotencyKey } } });
    },

    /** Newest first; `take` rows with id below `after`. */
    list(projectId: string | undefined, filter: JobFilter, after: string | undefined, take: number): Promise<JobModel[]> {
      return db.job.findMany({
        where: {
          ...inProject(projectId),
          ...(filter.statuses && { status: { in: [...filter.statuses] } }),
          ...(after !== undefined && { id: { lt: after } }),
          AND: filter.metadata.map(([key, value]) => ({ metadata: { path: [key], equals: value } })),
        },
        orderBy: { id: 'desc' },
        take,
      });
    },

    transition(
      jobId: string,
      change: { from: readonly JobStatus[]; to: JobStatus; event: JobEventInput; set?: Omit<Prisma.JobUpdateManyMutationInput, 'status'> },
    ): Promise<boolean> {
      return transitionJob(db, jobId, change);
    },

    findCheckpoint(projectId: string, id: string): Promise<(CheckpointModel & { job: JobModel }) | null> {
      return db.checkpoint.findFirst({ where: { id, projectId }, include: { job: true } });
    },

    /** Ascending by id (checkpoints are written in step order); `take` rows after `after`. */
    checkpoints(jobId: string, after: string | undefined, take: number): Promise<CheckpointModel[]> {
      return db.checkpoint.findMany({
        where: { jobId, ...(after !== undefined && { id: { gt: after } }) },
        orderBy: { id: 'asc' },
        take,
      });
    },

    events(jobId: string, afterId: number, take: number): Promise<JobEventModel[]> {
      return db.jobEvent.findMany({ where: { jobId, id: { gt: BigInt(afterId) } }, orderBy: { id: 'asc' }, take });
    },

    /** Up to `perSeries + 1` points of each metric (the extra one says more exist), by name then step. */
    metricSeries(jobId: string, q: { names?: string[]; fromStep?: number; toStep?: number; perSeries: number }): Promise<MetricRow[]> {
      const conditions = [
        Prisma.sql`job_id = ${jobId}`,
        ...(q.names ? [Prisma.sql`name = ANY(${q.names}::text[])`] : []),
        ...(q.fromStep !== undefined ? [Prisma.sql`step >= ${q.fromStep}`] : []),
        ...(q.toStep !== undefined ? [Prisma.sql`step <= ${q.toStep}`] : []),
      ];
      return db.$queryRaw<MetricRow[]>`
        SELECT name, step, value FROM (
          SELECT name, step, value, row_number() OVER (PARTITION BY name ORDER BY step) AS n
          FROM metrics WHERE ${Prisma.join(conditions, ' AND ')}
        ) ranked
        WHERE n <= ${q.perSeries + 1}
        ORDER BY name, step`;
    },

    /** Metric rows from `fromStep` on, by step (for live streams). */
    metricsFrom(jobId: string, fromStep: number, take: number): Promise<MetricRow[]> {
      return db.metric.findMany({
        where: { jobId, step: { gte: fromStep } },
        orderBy: [{ step: 'asc' }, { name: 'asc' }],
        select: { name: true, step: true, value: true },
        take,
      });
    },

    async latestMetricStep(jobId: string): Promise<number> {
      const { _max } = await db.metric.aggregate({ where: { jobId }, _max: { step: true } });
      return _max.step ?? 0;
    },
  };
}
