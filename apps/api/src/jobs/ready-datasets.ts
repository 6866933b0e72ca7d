import type { DatasetModel } from '@moco/db';

// Bounds the cache when many datasets are trained on; the oldest entries go first.
const MAX_CACHED_DATASETS = 10_000;

/**
 * Ready datasets by id, for job submission. `ready` is a dataset's last status and its shape never
 * changes after it, so a ready row stays right until the dataset is deleted (with its project), and
 * the job insert checks that it still exists (`insertWithEvent`). Rows in any other status are
 * not kept: they are looked up again next time.
 */
export class ReadyDatasets {
  private readonly rows = new Map<string, DatasetModel>();

  constructor(private readonly load: (projectId: string, id: string) => Promise<DatasetModel | null>) {}

  async find(projectId: string, id: string, fresh = false): Promise<DatasetModel | null> {
    const cached = fresh ? undefined : this.rows.get(id);
    if (cached) return cached.projectId === projectId ? cached : null;
    const row = await this.load(projectId, id);
    if (row?.status === 'ready') {
      if (this.rows.size >= MAX_CACHED_DATASETS) this.rows.delete(this.rows.keys().next().value!);
      this.rows.set(id, row);
    } else {
      this.rows.delete(id);
    }
    return row;
  }
}
