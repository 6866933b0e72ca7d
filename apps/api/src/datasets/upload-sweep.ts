import { deleteOrphans, removeStalePartials, type ObjectStore } from '@moco/storage';
import type { DatasetRepository } from './dataset-repository.js';
import { removeDeadSpools } from './spool.js';

export interface UploadSweepDeps {
  repo: DatasetRepository;
  store: ObjectStore;
  /** The upload spool folder of this replica. */
  spoolDir: string;
  graceS: number;
}

export interface UploadSweepReport {
  spoolFiles: string[];
  pendingRows: string[];
  partials: number;
  orphanObjects: string[];
}

const DATASET_OBJECT = /^projects\/[^/]+\/datasets\/([^/]+)\//;

/**
 * What uploads that died (a SIGKILLed API) left, given the write order: spool file, then pending row,
 * then object, then ready. Pending rows whose heartbeat is older than the grace go with their
 * objects (the object first: a crash in between leaves a pending row for the next sweep).
 */
export async function sweepStaleUploads({ repo, store, graceS }: Omit<UploadSweepDeps, 'spoolDir'>): Promise<Pick<UploadSweepReport, 'pendingRows' | 'partials'>> {
  const pendingRows: string[] = [];
  for (const row of await repo.stalePending(graceS)) {
    if (row.objectKey) await store.delete(row.objectKey);
    await repo.deletePending(row.id);
    pendingRows.push(row.id);
  }
  const partials = await removeStalePartials(store, new Date(Date.now() - graceS * 1000));
  return { pendingRows, partials };
}

/**
 * The start-up sweep, run before the API takes requests: this replica's dead spool files, stale
 * uploads, and dataset objects no row names (left by a crash of an API older than the pending-row
 * order) once older than the grace.
 */
export async function sweepUploadsAtStart(deps: UploadSweepDeps): Promise<UploadSweepReport> {
  const spoolFiles = await removeDeadSpools(deps.spoolDir);
  const stale = await sweepStaleUploads(deps);
  const orphanObjects = await deleteOrphans(deps.store, {
    prefix: 'projects/',
    match: DATASET_OBJECT,
    olderThan: new Date(Date.now() - deps.graceS * 1000),
    async kept(keys) {
      const idOf = (key: string) => DATASET_OBJECT.exec(key)![1]!;
      const rows = await deps.repo.existing([...new Set(keys.map(idOf))]);
      return new Set(keys.filter((key) => rows.has(idOf(key))));
    },
  });
  return { spoolFiles, ...stale, orphanObjects };
}

/** Sweeps stale uploads every grace period (a pending row is only stale once its heartbeat is that old). */
export function startUploadSweeper(deps: UploadSweepDeps, onSwept: (report: Partial<UploadSweepReport>) => void, onError: (err: unknown) => void): () => void {
  const timer = setInterval(() => {
    sweepStaleUploads(deps).then(onSwept, onError);
  }, deps.graceS * 1000);
  return () => clearInterval(timer);
}
