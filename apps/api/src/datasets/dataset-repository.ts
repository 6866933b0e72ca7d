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

    /** Newest first; `take` rows with id below `after`. */
    list(projectId: string | undefined, after: string | undefined, take: number): Promise<DatasetRow[]> {
      return db.dataset.findMany({
        where: { ...(projectId !== undefined && { projectId }), ...(after !== undefined && { id: { lt: after } }) },
        orderBy: { id: 'desc' },
        take,
      });
    },
  };
}
