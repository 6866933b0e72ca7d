import type { Dataset } from '@moco/contracts';
import { newId, type Db, type Prisma } from '@moco/db';
import { cifarDemoDefaults, Moco, Rng, saveTrainingState, tf, type MocoConfig } from '@moco/moco';
import type { ObjectStore } from '@moco/storage';
import type { CreatedKey } from '../keys/key-service.js';
import { bearer, type TestApp } from './test-app.js';
import { toDatasetResource } from '../datasets/dataset-service.js';

/** A ready dataset row, as an upload would leave it (28x28 grey, labelled, 1000 images unless overridden). */
export async function insertDataset(db: Db, projectId: string, overrides: Partial<Prisma.DatasetUncheckedCreateInput> = {}): Promise<Dataset> {
  const id = newId('ds');
  const row = await db.dataset.create({
    data: {
      id,
      projectId,
      name: 'fixture',
      status: 'ready',
      source: 'upload',
      format: 'idx.gz',
      objectKey: `projects/${projectId}/datasets/${id}/fixture.gz`,
      uri: `s3://moco-test/projects/${projectId}/datasets/${id}/fixture.gz`,
      bytes: 1000,
      imageCount: 1000,
      height: 28,
      width: 28,
      channels: 1,
      labelled: true,
      classNames: ['a', 'b'],
      ...overrides,
    },
  });
  return toDatasetResource(row);
}

/** A checkpoint row of a job, as the worker leaves one (the object itself is not stored). */
export async function insertCheckpoint(db: Db, job: { id: string; project_id: string }, step: number): Promise<string> {
  const id = newId('ckpt');
  await db.checkpoint.create({
    data: {
      id,
      jobId: job.id,
      projectId: job.project_id,
      step,
      epoch: 1,
      objectKey: `projects/${job.project_id}/jobs/${job.id}/checkpoints/step-${String(step).padStart(9, '0')}.mocotens`,
      bytes: 1000,
      metrics: { loss: 4.2 },
      transform: { size: 28, mean: [0.5], std: [0.25], channels: 1 },
      encoder: { arch: 'resnet18', stem: 'cifar', width: 4, in_channels: 1, head: 'v1', dim: 16 },
    },
  });
  return id;
}

/** The encoder insertCheckpoint's row describes (ResNet-18, CIFAR stem, width 4, grey, 16-d head). */
const FIXTURE_ENCODER: Partial<MocoConfig> = { arch: 'resnet18', stem: 'cifar', width: 4, inChannels: 1, head: 'v1', dim: 16, K: 64 };

/** A checkpoint row whose object is a real (freshly initialised) training state in the store; returns its id and bytes. */
export async function insertStoredCheckpoint(
  db: Db,
  store: ObjectStore,
  job: { id: string; project_id: string },
  step: number,
): Promise<{ id: string; state: Uint8Array }> {
  const id = await insertCheckpoint(db, job, step);
  await tf.setBackend('cpu');
  const rng = new Rng(step);
  const moco = new Moco({ ...cifarDemoDefaults, ...FIXTURE_ENCODER }, rng);
  const state = await saveTrainingState(moco, { step, epoch: 1, batchInEpoch: 0, rng: rng.state() });
  moco.dispose();
  const row = await db.checkpoint.update({ where: { id }, data: { bytes: state.length } });
  await store.put(row.objectKey, state);
  return { id, state };
}

/** A job of the key's project, created through the API, with one stored checkpoint (insertStoredCheckpoint). */
export async function jobWithStoredCheckpoint(t: TestApp, key: CreatedKey, step: number): Promise<{ jobId: string; id: string; state: Uint8Array }> {
  const dataset = await insertDataset(t.db, key.project_id);
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: bearer(key),
    payload: { dataset_id: dataset.id, hyperparameters: { batch_size: 64, K: 256, epochs: 2 } },
  });
  const jobId: string = created.json().id;
  return { jobId, ...(await insertStoredCheckpoint(t.db, t.store, { id: jobId, project_id: key.project_id }, step)) };
}
