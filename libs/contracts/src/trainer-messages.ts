import { BACKEND_NAMES } from '@moco/moco/config';
import { z } from 'zod';
import { CheckpointEncoder, CheckpointTransform } from './checkpoint-metadata.js';
import { CollapseGuard, EarlyStopping } from './job-options.js';

// Messages between the worker (parent) and the trainer child of one job, over the IPC channel (the
// structured clone of 'advanced' serialization). The receiving side parses each one, so a malformed
// message is a clear error instead of a field read as undefined somewhere later.

/** A number that may not be finite: a diverged loss stays NaN (or Infinity) and must reach the worker as such. */
const AnyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');
const Count = z.number().int().min(0);

/** Where the worker's objects are: a local folder, or an S3(-compatible) bucket. @moco/storage builds its store from this. */
export const ObjectStoreConfig = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local'), root: z.string().min(1) }),
  z.object({
    kind: z.literal('s3'),
    bucket: z.string().min(1),
    /** Folder inside the bucket that keys are relative to (leading/trailing `/` ignored). */
    prefix: z.string().optional(),
    /** For S3-compatible servers (MinIO, s3rver, ...); omit for AWS. */
    endpoint: z.string().optional(),
    region: z.string().min(1),
    /** Both or neither; when omitted the SDK's default credential chain is used. */
    accessKeyId: z.string().optional(),
    secretAccessKey: z.string().optional(),
    forcePathStyle: z.boolean().optional(),
    /**
     * Default 'WHEN_REQUIRED': the SDK's 'WHEN_SUPPORTED' adds CRC32 headers/trailers (aws-chunked
     * encoding) that many S3-compatible servers reject.
     */
    requestChecksumCalculation: z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']).optional(),
    responseChecksumValidation: z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']).optional(),
    /** Keys per ListObjectsV2 request (max and default 1000). */
    listPageSize: z.number().int().min(1).max(1000).optional(),
  }),
]);
export type ObjectStoreConfig = z.infer<typeof ObjectStoreConfig>;

/** The worker's dataset cache folder (shared by the processes that name it) and its bound. */
export const DatasetCacheConfig = z.object({ dir: z.string().min(1), maxBytes: z.number().int().positive() });
export type DatasetCacheConfig = z.infer<typeof DatasetCacheConfig>;

export const BackendName = z.enum(BACKEND_NAMES);
export type BackendName = z.infer<typeof BackendName>;

/** The backend a trainer runs on, and why a preferred one was not used. */
export const BackendChoice = z.object({ name: BackendName, detail: z.string(), warnings: z.array(z.string()) });
export type BackendChoice = z.infer<typeof BackendChoice>;

/** Where a dataset's bytes are: an object uploaded to this deployment's store, or a registered s3:// URI. */
export const DatasetLocation = z.object({ id: z.string().min(1), objectKey: z.string().nullable(), uri: z.string() });
export type DatasetLocation = z.infer<typeof DatasetLocation>;

export const DatasetLimits = z.object({ maxBytes: Count, maxFiles: Count, maxPixelsPerImage: Count });

/** What a job's evaluations so far were (on resume: to continue its best and its patience). */
export const EvaluationRecord = z.object({ step: Count, value: AnyNumber });

/** Accuracies of the raw pixels and of the randomly initialised encoder: the bar a job's encoder has to clear. */
export const Baselines = z.object({
  raw_knn_accuracy: z.number(),
  raw_probe_accuracy: z.number(),
  random_knn_accuracy: z.number(),
  random_probe_accuracy: z.number(),
});
export type Baselines = z.infer<typeof Baselines>;

export const StartMessage = z.object({
  type: z.literal('start'),
  storage: ObjectStoreConfig,
  cache: DatasetCacheConfig,
  backend: z.union([BackendName, z.literal('auto')]),
  train: DatasetLocation,
  eval: DatasetLocation.nullable(),
  /** The dataset's channels (1 or 3), which the encoder is built for. */
  channels: z.union([z.literal(1), z.literal(3)]),
  /** The job's resolved hyperparameters, as stored (the child checks them: a bad value is the job's fault). */
  hyperparameters: z.unknown(),
  seed: z.number().int(),
  limits: DatasetLimits,
  checkpointEvery: Count,
  /** Object key folder of the job's checkpoints (see checkpointKey). */
  checkpointPrefix: z.string().min(1),
  /** The training state to continue (the job's newest checkpoint, or the one it starts from) up to the job's epochs; null: a new run. */
  resumeKey: z.string().nullable(),
  earlyStopping: EarlyStopping.nullable(),
  collapse: CollapseGuard.nullable(),
  /** The job's earlier evaluations of the metric that picks its best checkpoint, by step (a resume continues them). */
  evaluations: z.array(EvaluationRecord),
  /** The dataset's baselines when already measured (null: the child measures them, if the eval set is labelled). */
  baselines: Baselines.nullable(),
});
export type StartMessage = z.infer<typeof StartMessage>;

/** Stop between steps, saving a checkpoint first. */
export const StopMessage = z.object({ type: z.literal('stop') });
export type StopMessage = z.infer<typeof StopMessage>;

export const ParentMessage = z.discriminatedUnion('type', [StartMessage, StopMessage]);
export type ParentMessage = z.infer<typeof ParentMessage>;

/** An evaluation at an epoch's end; `best`: the best so far, so a checkpoint of it follows. */
export const Evaluation = z.object({ knnAccuracy: z.number(), probeAccuracy: z.number(), best: z.boolean() });
export type Evaluation = z.infer<typeof Evaluation>;

/** How a run that was not stopped from outside ended. */
export const RunEnding = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('completed') }),
  /** Stopped from outside (cancel, shutdown, max runtime), after a checkpoint. */
  z.object({ kind: z.literal('stopped') }),
  z.object({ kind: z.literal('early_stopped'), step: Count, epoch: Count, metric: EarlyStopping.shape.metric, best: z.number(), bestStep: Count, patience: Count }),
  z.object({ kind: z.literal('collapsed'), step: Count, featureStd: AnyNumber, threshold: z.number(), steps: Count }),
]);
export type RunEnding = z.infer<typeof RunEnding>;

/** `epoch` is 1-based (the epoch a step belongs to); `step` is the global step, 1-based. */
export const ChildMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ready'),
    backend: BackendChoice,
    images: Count,
    evalImages: Count.nullable(),
    knnMonitor: z.boolean(),
    transform: CheckpointTransform,
    encoder: CheckpointEncoder,
    /** Steps already done: > 0 when resumed. */
    step: Count,
  }),
  /** Measured by this child (the start message had none): the worker caches them for the dataset. */
  z.object({ type: z.literal('baselines'), baselines: Baselines, evalImages: Count, seconds: z.number() }),
  z.object({
    type: z.literal('step'),
    step: Count,
    epoch: Count,
    loss: AnyNumber,
    lr: AnyNumber,
    pretextAccuracy: AnyNumber,
    featureStd: AnyNumber,
    images: Count,
    seconds: z.number(),
  }),
  z.object({
    type: z.literal('epoch'),
    step: Count,
    epoch: Count,
    loss: AnyNumber,
    lr: AnyNumber,
    imagesPerSecond: z.number(),
    seconds: z.number(),
    evaluation: Evaluation.nullable(),
  }),
  /** `seconds`: how long the object's upload took; `best`: the checkpoint of the best evaluation so far. */
  z.object({
    type: z.literal('checkpoint'),
    step: Count,
    epoch: Count,
    key: z.string().min(1),
    bytes: Count,
    final: z.boolean(),
    best: z.boolean(),
    seconds: z.number(),
  }),
  z.object({ type: z.literal('done'), ending: RunEnding }),
  z.object({ type: z.literal('failed'), userError: z.boolean(), code: z.string(), message: z.string() }),
]);
export type ChildMessage = z.infer<typeof ChildMessage>;

/** A message that does not fit its schema: says who sent it and what is wrong. */
export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
}

function parseMessage<S extends z.ZodType>(schema: S, from: string, message: unknown): z.infer<S> {
  const parsed = schema.safeParse(message);
  if (parsed.success) return parsed.data;
  const type = typeof message === 'object' && message !== null && 'type' in message ? ` '${String(message.type)}'` : '';
  throw new MalformedMessageError(`malformed message${type} from the ${from}: ${z.prettifyError(parsed.error)}`);
}

/** The trainer child's reading of what the worker sends. */
export const parseParentMessage = (message: unknown): ParentMessage => parseMessage(ParentMessage, 'worker', message);
/** The worker's reading of what its trainer child sends. */
export const parseChildMessage = (message: unknown): ChildMessage => parseMessage(ChildMessage, 'trainer process', message);
