import { z } from 'zod';
import { CheckpointTransform } from './checkpoint-metadata.js';
import { EVALUATION_METRICS } from './job-options.js';
import { BackendChoice } from './trainer-messages.js';
import { JobStatus } from './job-status.js';

// What each job event says in its `data`: written through libs/db's addJobEvent (which parses it
// against these), served by the REST API and documented in OpenAPI as one schema per type.

/** Set on the events that move the job to another status (libs/db's transitionJob adds it). */
const status = JobStatus.optional().describe('the status the job moved to');
const step = z.number().int().min(0);
const checkpointId = z.string().nullable();
/** A metric value as JSON carries it: a value that is not finite (a diverged loss) is null. */
const value = z.number().nullable();

/** A setting that runs but is known to train badly; the job is created anyway. */
export const FieldWarning = z
  .object({
    field: z.string().describe('the request field, e.g. hyperparameters.K'),
    message: z.string(),
  })
  .meta({ id: 'FieldWarning' });
export type FieldWarning = z.infer<typeof FieldWarning>;

export const JOB_EVENT_DATA = {
  created: z.object({ status }),
  warning: FieldWarning,
  started: z.object({ status, attempt: z.number().int().min(1), worker_id: z.string() }),
  dataset_loaded: z.object({
    images: z.number().int(),
    eval_images: z.number().int().nullable(),
    knn_monitor: z.boolean().describe('the eval dataset is labelled: each epoch is evaluated'),
    transform: CheckpointTransform,
    backend: BackendChoice,
    resumed_from_step: step.nullable(),
  }),
  epoch_completed: z.object({
    epoch: z.number().int(),
    step,
    loss: value,
    lr: value,
    images_per_s: z.number(),
    seconds: z.number(),
    knn_accuracy: z.number().nullable(),
    probe_accuracy: z.number().nullable(),
  }),
  checkpoint_saved: z.object({
    checkpoint_id: z.string(),
    step,
    epoch: z.number().int(),
    final: z.boolean(),
    best: z.boolean().describe('the checkpoint of the best evaluation so far'),
    bytes: z.number().int(),
  }),
  evaluated: z.object({
    step,
    epoch: z.number().int(),
    checkpoint_id: checkpointId.describe('the checkpoint saved for this evaluation: set when it is the best so far'),
    knn_accuracy: z.number(),
    probe_accuracy: z.number(),
  }),
  cancel_requested: z.object({ status }),
  requeued: z.object({
    status,
    reason: z.enum(['shutdown', 'worker_lost']),
    step,
    worker_id: z.string().nullable().optional(),
    checkpoint_id: checkpointId.optional(),
  }),
  retrying: z.object({ status, attempt: z.number().int(), max_attempts: z.number().int(), error: z.string(), step }),
  early_stopped: z.object({
    step,
    epoch: z.number().int(),
    metric: z.enum(EVALUATION_METRICS),
    best: z.number(),
    best_step: step,
    best_checkpoint_id: checkpointId,
    patience: z.number().int(),
  }),
  collapsed: z.object({
    step,
    feature_std: value,
    threshold: z.number(),
    steps: z.number().int().describe('consecutive steps under the threshold'),
  }),
  succeeded: z.object({ status, step, checkpoint_id: checkpointId, best_checkpoint_id: checkpointId.optional() }),
  failed: z.object({ status, error_code: z.string(), step, checkpoint_id: checkpointId.optional() }),
  cancelled: z.object({ status, step: step.optional(), checkpoint_id: checkpointId.optional() }),
} as const;

/** Every event a job's history can hold (job_events.type); the last three end it. */
export const JOB_EVENT_TYPES = Object.keys(JOB_EVENT_DATA) as (keyof typeof JOB_EVENT_DATA)[];
export const JobEventType = z.enum(JOB_EVENT_TYPES as [keyof typeof JOB_EVENT_DATA, ...(keyof typeof JOB_EVENT_DATA)[]]);
export type JobEventType = z.infer<typeof JobEventType>;

/** An event's data as a writer gives it (defaults not yet applied). */
export type JobEventData<T extends JobEventType> = z.input<(typeof JOB_EVENT_DATA)[T]>;

/** An event's data, checked against its type's schema: a writer's mistake is a clear error, not a row the API cannot serve. */
export function parseJobEventData<T extends JobEventType>(type: T, data: unknown): z.infer<(typeof JOB_EVENT_DATA)[T]> {
  const parsed = JOB_EVENT_DATA[type].safeParse(data);
  if (!parsed.success) throw new Error(`the data of a '${type}' job event is malformed: ${z.prettifyError(parsed.error)}`);
  return parsed.data as z.infer<(typeof JOB_EVENT_DATA)[T]>;
}
