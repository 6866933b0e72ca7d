import { CheckpointEncoder, CheckpointTransform } from './checkpoint-metadata.js';
import { z } from 'zod';
import { FieldWarning, JOB_EVENT_DATA, JOB_EVENT_TYPES, type JobEventType } from './job-events.js';
import { JobStatus } from './job-status.js';
import { Hyperparameters, HyperparametersInput, MAX_TOTAL_STEPS } from './hyperparameters.js';
import { CollapseGuard, EarlyStopping } from './job-options.js';
import { commaList, PageQuery, page, Timestamp } from './rest-common.js';
import { CheckpointDownloads } from './rest-checkpoints.js';

export { JOB_STATUS_VALUES, JobStatus, type JobStatusValue } from './job-status.js';
export { FieldWarning, JOB_EVENT_DATA, JOB_EVENT_TYPES, JobEventType, parseJobEventData, type JobEventData } from './job-events.js';

export const METADATA_MAX_KEYS = 32;

export const Metadata = z
  .record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'keys: 1-64 of letters, digits, "_", ".", ":", "-"'), z.string().max(512))
  .refine((m) => Object.keys(m).length <= METADATA_MAX_KEYS, `at most ${METADATA_MAX_KEYS} keys`)
  .describe('free-form labels; filter jobs with ?metadata.<key>=<value>');

export const CreateJobRequest = z
  .object({
    dataset_id: z.string().min(1).optional().describe('required unless from_checkpoint_id is given (then it defaults to that job\'s)'),
    eval_dataset_id: z.string().min(1).optional().describe('labelled dataset with the same channels, for the kNN monitor'),
    hyperparameters: HyperparametersInput.optional().describe('unset fields come from the recipe for the image size'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).optional().describe('default: random'),
    metadata: Metadata.optional(),
    checkpoint_every: z.number().int().min(1).max(1_000_000).default(500).describe('steps between checkpoints'),
    max_runtime_s: z.number().int().min(1).max(30 * 86_400).optional(),
    from_checkpoint_id: z
      .string()
      .min(1)
      .optional()
      .describe("continue this checkpoint's training state; only hyperparameters.epochs may be set (above the checkpoint's epoch)"),
    early_stopping: EarlyStopping.optional(),
    collapse: CollapseGuard.optional(),
  })
  .strict()
  .meta({ id: 'CreateJobRequest' });
export type CreateJobRequest = z.input<typeof CreateJobRequest>;

/** What POST /v1/jobs would create from a request, without creating it: the form's "defaults shown". */
export const JobPreview = z
  .object({
    project_id: z.string().describe('the project the job would go to (the key\'s own)'),
    dataset_id: z.string(),
    eval_dataset_id: z.string().nullable(),
    hyperparameters: Hyperparameters.describe('resolved: the request\'s fields, the rest from the recipe for the dataset'),
    total_steps: z.number().int(),
    steps_per_epoch: z.number().int(),
    warnings: z.array(FieldWarning).describe('what createJob would answer in its warnings'),
  })
  .meta({ id: 'JobPreview' });
export type JobPreview = z.infer<typeof JobPreview>;

export const Job = z
  .object({
    id: z.string(),
    project_id: z.string(),
    dataset_id: z.string(),
    eval_dataset_id: z.string().nullable(),
    status: JobStatus,
    hyperparameters: Hyperparameters.describe('resolved: every field set'),
    seed: z.number().int(),
    metadata: z.record(z.string(), z.string()),
    checkpoint_every: z.number().int(),
    max_runtime_s: z.number().int().nullable(),
    from_checkpoint_id: z.string().nullable(),
    early_stopping: EarlyStopping.nullable(),
    collapse: CollapseGuard.nullable(),
    best_checkpoint_id: z
      .string()
      .nullable()
      .describe('the checkpoint of the best evaluation so far (needs a labelled eval dataset); promote it with POST /v1/models {checkpoint_id}'),
    progress: z.object({
      step: z.number().int(),
      total_steps: z.number().int(),
      epoch: z.number().int(),
      epochs: z.number().int(),
      fraction: z.number().describe('step / total_steps, 0 to 1'),
    }),
    latest_metrics: z.record(z.string(), z.number().nullable()).describe('newest value of each metric'),
    attempts: z.number().int(),
    worker_id: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    created_at: Timestamp,
    started_at: Timestamp.nullable(),
    finished_at: Timestamp.nullable(),
    cancel_requested_at: Timestamp.nullable(),
    heartbeat_at: Timestamp.nullable(),
    updated_at: Timestamp,
  })
  .meta({ id: 'Job' });
export type Job = z.infer<typeof Job>;

export const CreatedJob = Job.extend({
  warnings: z
    .array(FieldWarning)
    .describe('known-bad settings of the resolved hyperparameters (also recorded as `warning` events); empty when none'),
}).meta({ id: 'CreatedJob' });
export type CreatedJob = z.infer<typeof CreatedJob>;

export const JobPage = page(Job);

export const ListJobsQuery = PageQuery.extend({
  status: commaList(JobStatus).optional().describe('comma-separated statuses'),
  project_id: z.string().optional().describe('admin keys only: one project (default: every project)'),
})
  .catchall(z.string())
  .describe('also metadata.<key>=<value>: jobs whose metadata has that value (several are ANDed)');

/** One schema per event type, so generated clients know what each event's `data` holds. */
export const JobEvent = z
  .discriminatedUnion(
    'type',
    JOB_EVENT_TYPES.map((type) =>
      z.object({
        id: z.number().int().describe('increasing; the SSE id'),
        job_id: z.string(),
        type: z.literal(type),
        message: z.string(),
        data: JOB_EVENT_DATA[type],
        created_at: Timestamp,
      }),
    ) as unknown as [JobEventOf<JobEventType>, ...JobEventOf<JobEventType>[]],
  )
  .meta({ id: 'JobEvent' });
type JobEventOf<T extends JobEventType> = z.ZodObject<{
  id: z.ZodNumber;
  job_id: z.ZodString;
  type: z.ZodLiteral<T>;
  message: z.ZodString;
  data: (typeof JOB_EVENT_DATA)[T];
  created_at: typeof Timestamp;
}>;
export type JobEvent = { [T in JobEventType]: z.infer<JobEventOf<T>> }[JobEventType];

export const JobEventPage = page(JobEvent);

/** A training step in a query: steps are 32-bit integer columns, so a larger one would fail in Postgres. */
const StepQuery = z.coerce.number().int().min(0).max(MAX_TOTAL_STEPS);

/**
 * An event id given back as a cursor: `?after=` and the SSE `Last-Event-ID` header are read by this
 * one schema, so a value is good or bad (400) the same way in both. 15 digits stay exact in a double.
 */
export const EventCursor = z
  .string()
  .regex(/^\d{1,15}$/, 'must be an event id: up to 15 digits')
  .transform(Number);

export const JobEventsQuery = z.object({
  after: EventCursor.optional().describe('event id; events after it (SSE: Last-Event-ID wins)'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  // The stream reads from the step after this one, which must still be a step.
  metrics_after_step: StepQuery.max(MAX_TOTAL_STEPS - 1)
    .optional()
    .describe('SSE only: also send metrics after this step (default: only metrics newer than the stream)'),
});

export const MetricsQuery = z.object({
  name: commaList(z.string().min(1).max(64)).optional().describe('comma-separated metric names (default: all)'),
  from_step: StepQuery.optional(),
  to_step: StepQuery.optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(10_000).describe('most points per metric'),
});

/** Points of one metric, `[step, value]` by increasing step; a value that is not finite (NaN) is null. */
export const MetricSeries = z.object({
  name: z.string(),
  points: z.array(z.tuple([z.number().int(), z.number().nullable()])),
});
export type MetricSeries = z.infer<typeof MetricSeries>;

export const MetricsResponse = z
  .object({
    job_id: z.string(),
    data: z.array(MetricSeries),
    has_more: z.boolean().describe('some metric had more than limit points'),
    next_from_step: z
      .number()
      .int()
      .nullable()
      .describe('ask again from this step for the rest (points are keyed by step: merge, some may repeat)'),
  })
  .meta({ id: 'Metrics' });
export type MetricsResponse = z.infer<typeof MetricsResponse>;

export const Checkpoint = z
  .object({
    id: z.string(),
    job_id: z.string(),
    step: z.number().int(),
    epoch: z.number().int(),
    final: z.boolean(),
    bytes: z.number().int(),
    downloads: CheckpointDownloads,
    metrics: z.record(z.string(), z.unknown()),
    transform: CheckpointTransform.describe('the evaluation transform serving and the exports apply'),
    encoder: CheckpointEncoder.describe("the encoder's shape"),
    created_at: Timestamp,
  })
  .meta({ id: 'Checkpoint' });
export type Checkpoint = z.infer<typeof Checkpoint>;

export const CheckpointPage = page(Checkpoint);
