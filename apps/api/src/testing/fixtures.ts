import type { Dataset } from '@moco/contracts';
import { newId, type Db, type Prisma } from '@moco/db';
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
