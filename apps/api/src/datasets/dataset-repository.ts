import type { DatasetModel as DatasetRow, Db, Prisma } from '@moco/db';

export type DatasetRepository = ReturnType<typeof createDatasetRepository>;

export function createDatasetRepository(db: Db) {
  return {
    insert(data: Prisma.DatasetUncheckedCreateInput): Promise<DatasetRow> {
      return db.dataset.create({ data });
    },

    /** `projectId` undefined: any project (admin reads). */
    findById(projectId: string | undefined, id: string): Promise<DatasetRow | null> {
      return db.dataset.findFirst({ where: { id, ...(projectId !== undefined && { projectId }) } });
    },

    /** The first `n` thumbnails of a dataset, in the order they were picked. */
    samples(datasetId: string, n: number): Promise<{ label: number | null; png: Uint8Array }[]> {
      return db.datasetSample.findMany({ where: { datasetId }, orderBy: { index: 'asc' }, take: n, select: { label: true, png: true } });
    },

    /** Newest first; `take` rows with id below `after`. */
    list(projectId: string | undefined, after: string | undefined, take: number): Promise<DatasetRow[]> {
      return db.dataset.findMany({
        where: { ...(projectId !== undefined && { projectId }), ...(after !== undefined && { id: { lt: after } }) },
        orderBy: { id: 'desc' },
        take,
      });
    },

    /** The heartbeat of an upload in progress (by the database's clock, which every replica shares). */
    async touchPending(id: string): Promise<void> {
      await db.$executeRaw`UPDATE datasets SET updated_at = now() WHERE id = ${id} AND status = 'pending'`;
    },

    /** Null when the row is no longer pending (a sweep took it for a dead upload's). */
    async markReady(id: string): Promise<DatasetRow | null> {
      const { count } = await db.dataset.updateMany({ where: { id, status: 'pending' }, data: { status: 'ready' } });
      return count === 1 ? db.dataset.findUnique({ where: { id } }) : null;
    },

    async deletePending(id: string): Promise<void> {
      await db.dataset.deleteMany({ where: { id, status: 'pending' } });
    },

    /** Uploads whose heartbeat stopped more than `graceS` ago: their API died mid-upload. */
    stalePending(graceS: number): Promise<{ id: string; objectKey: string | null }[]> {
      return db.$queryRaw`
        SELECT id, object_key AS "objectKey" FROM datasets
        WHERE status = 'pending' AND source = 'upload' AND updated_at < now() - ${graceS} * interval '1 second'`;
    },

    /** Which of `ids` have a row. */
    async existing(ids: string[]): Promise<Set<string>> {
      const rows = await db.dataset.findMany({ where: { id: { in: ids } }, select: { id: true } });
      return new Set(rows.map((r) => r.id));
    },
  };
}
