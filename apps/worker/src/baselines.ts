import { Baselines, Hyperparameters } from '@moco/contracts';
import type { Db } from '@moco/db';
import { EVALUATION_PROTOCOL } from '@moco/moco/config';
import type { ClaimedJob } from './claim.js';

// A training set's baselines on an eval set (raw pixels and a random encoder, kNN and probe) are
// measured once and reused by every later job with the same evaluation settings: what changes
// them (the images' size, the encoder's backbone, the kNN's k and t, the protocol) is the key.

/** The dataset pair and the settings the baselines depend on; null when the job has no eval set (or unusable hyperparameters). */
export function baselineKey(job: ClaimedJob): { datasetId: string; evalDatasetId: string; settings: string } | null {
  const hp = Hyperparameters.safeParse(job.hyperparameters);
  if (!job.evalDatasetId || !hp.success) return null;
  const { image_size, encoder, stem, width, knn_k, knn_t } = hp.data;
  const settings = JSON.stringify({ image_size, encoder, stem, width, knn_k, knn_t, protocol: EVALUATION_PROTOCOL });
  return { datasetId: job.datasetId, evalDatasetId: job.evalDatasetId, settings };
}

export async function cachedBaselines(db: Db, job: ClaimedJob): Promise<Baselines | null> {
  const key = baselineKey(job);
  if (!key) return null;
  const row = await db.datasetBaseline.findUnique({ where: { datasetId_evalDatasetId_settings: key } });
  const parsed = Baselines.safeParse(row?.values);
  return parsed.success ? parsed.data : null;
}

/** Keeps what a trainer measured; a job that measured the same meanwhile leaves the first. */
export async function saveBaselines(db: Db, job: ClaimedJob, values: Baselines, evalImages: number): Promise<void> {
  const key = baselineKey(job);
  if (!key) return;
  await db.datasetBaseline.upsert({ where: { datasetId_evalDatasetId_settings: key }, create: { ...key, values, evalImages }, update: {} });
}
