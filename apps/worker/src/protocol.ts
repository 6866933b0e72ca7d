// Messages between the worker (parent) and the trainer child of one job, over the IPC channel.
import type { CheckpointEncoder, CheckpointTransform } from '@moco/contracts';
import type { ObjectStoreConfig } from '@moco/storage';
import type { BackendChoice, BackendName } from '@moco/moco';
import type { StepInfo } from '@moco/trainer';
import type { DatasetCache } from './dataset-cache.js';

/** Where a dataset's bytes are: an object uploaded to this deployment's store, or a registered s3:// URI. */
export interface DatasetLocation {
  id: string;
  objectKey: string | null;
  uri: string;
}

/** The evaluation transform and the encoder's shape, as checkpoint rows store them. */
export type TransformInfo = CheckpointTransform;
export type EncoderInfo = CheckpointEncoder;

export interface StartMessage {
  type: 'start';
  storage: ObjectStoreConfig;
  cache: DatasetCache;
  backend: BackendName | 'auto';
  train: DatasetLocation;
  eval: DatasetLocation | null;
  /** The dataset's channels (1 or 3), which the encoder is built for. */
  channels: 1 | 3;
  /** The job's resolved hyperparameters, as stored (validated by the child). */
  hyperparameters: unknown;
  seed: number;
  limits: { maxBytes: number; maxFiles: number; maxPixelsPerImage: number };
  checkpointEvery: number;
  /** Object key folder of the job's checkpoints (see checkpointKey). */
  checkpointPrefix: string;
  /** The training state to continue (the job's newest checkpoint, or the one it starts from) up to the job's epochs; null: a new run. */
  resumeKey: string | null;
}

/** Stop between steps, saving a checkpoint first. */
export interface StopMessage {
  type: 'stop';
}

export type ParentMessage = StartMessage | StopMessage;

/** `epoch` is 1-based (the epoch a step belongs to); `step` is the global step, 1-based. */
export type ChildMessage =
  | {
      type: 'ready';
      backend: BackendChoice;
      images: number;
      evalImages: number | null;
      knnMonitor: boolean;
      transform: TransformInfo;
      encoder: EncoderInfo;
      /** Steps already done: > 0 when resumed. */
      step: number;
    }
  | ({ type: 'step'; epoch: number } & Pick<StepInfo, 'step' | 'loss' | 'lr' | 'pretextAccuracy' | 'featureStd' | 'images' | 'seconds'>)
  | {
      type: 'epoch';
      step: number;
      epoch: number;
      loss: number;
      lr: number;
      imagesPerSecond: number;
      seconds: number;
      knnAccuracy: number | null;
    }
  /** `seconds`: how long the object's upload took. */
  | { type: 'checkpoint'; step: number; epoch: number; key: string; bytes: number; final: boolean; seconds: number }
  | { type: 'done'; stopped: boolean }
  | { type: 'failed'; userError: boolean; code: string; message: string };

export function checkpointPrefix(projectId: string, jobId: string): string {
  return `projects/${projectId}/jobs/${jobId}/checkpoints/`;
}

export function checkpointKey(prefix: string, step: number): string {
  return `${prefix}step-${String(step).padStart(9, '0')}.mocotens`;
}

/** A problem with the job's own inputs: it fails at once, since a retry would fail the same way. */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
