// Fixtures for tests and the benchmark: real rows and real checkpoint objects, no training.
import { randomBytes } from 'node:crypto';
import { hashApiKey, newId, type Db } from '@moco/db';
import type { CheckpointTransform } from '@moco/models';
import { cifarDemoDefaults, Moco, Rng, saveTrainingState, type MocoConfig } from '@moco/moco';
import type { ObjectStore } from '@moco/storage';

/** A project with one API key; returns the key's secret. */
export async function createProjectWithKey(db: Db): Promise<{ projectId: string; apiKey: string }> {
  const projectId = newId('proj');
  const apiKey = `sk_${randomBytes(16).toString('hex')}`;
  await db.project.create({ data: { id: projectId, name: 'test' } });
  await db.apiKey.create({
    data: {
      id: newId('key'),
      projectId,
      name: 'test',
      secretHash: hashApiKey(apiKey),
      prefix: apiKey.slice(0, 7),
    },
  });
  return { projectId, apiKey };
}

export interface TestCheckpoint {
  id: string;
  jobId: string;
  /** The model the checkpoint holds (freshly initialised from `seed`); the caller disposes it. */
  moco: Moco;
}

/** A small model for tests: ResNet-18 (CIFAR stem) of width 4. */
export const tinyConfig = (inChannels: 1 | 3): MocoConfig => ({ ...cifarDemoDefaults, width: 4, dim: 8, K: 16, inChannels, bnSplits: 1, batchSize: 4 });

/**
 * Saves a new model's training state to the store and records it as a checkpoint of a new job, as the
 * worker would (object key, transform and encoder JSON); `objectBytes` replaces the object (a broken checkpoint).
 */
export async function createCheckpoint(
  db: Db,
  store: ObjectStore,
  opts: { projectId: string; config: MocoConfig; transform: CheckpointTransform; seed: number; objectBytes?: Uint8Array },
): Promise<TestCheckpoint> {
  const { projectId, config, transform } = opts;
  const datasetId = newId('ds');
  const jobId = newId('job');
  const step = 1;
  await db.dataset.create({ data: { id: datasetId, projectId, name: 'd', source: 'upload', uri: 'file:///dataset', status: 'ready' } });
  await db.job.create({
    data: { id: jobId, projectId, datasetId, hyperparameters: {}, seed: opts.seed, checkpointEvery: 1, totalSteps: 1, status: 'succeeded' },
  });
  const moco = new Moco(config, new Rng(opts.seed));
  const bytes = opts.objectBytes ?? (await saveTrainingState(moco, { step, epoch: 1, batchInEpoch: 0, rng: new Rng(opts.seed).state() }));
  const objectKey = `projects/${projectId}/jobs/${jobId}/checkpoints/step-${String(step).padStart(9, '0')}.mocotens`;
  await store.put(objectKey, Buffer.from(bytes));
  const id = newId('ckpt');
  await db.checkpoint.create({
    data: {
      id,
      jobId,
      projectId,
      step,
      epoch: 1,
      final: true,
      objectKey,
      bytes: bytes.byteLength,
      transform,
      encoder: { arch: config.arch, stem: config.stem, width: config.width, in_channels: config.inChannels, head: config.head, dim: config.dim },
    },
  });
  return { id, jobId, moco };
}
