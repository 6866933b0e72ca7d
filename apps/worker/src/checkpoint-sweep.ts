import { TERMINAL_STATUSES, type Db, type JobStatus } from '@moco/db';
import { deleteOrphans, removeStalePartials, type ObjectStore } from '@moco/storage';

const CHECKPOINT_OBJECT = /^projects\/[^/]+\/jobs\/([^/]+)\/checkpoints\//;

/**
 * The worker's start-up sweep. A trainer writes a checkpoint's object before the worker records its
 * row, so a worker killed in between leaves an object no row names. While its job is live, a resume
 * writes the same step again (object and row); once the job is finished (or gone) nothing will, and
 * the object goes, when older than the grace. Also removes what puts that died mid-write left.
 */
export async function sweepCheckpoints(db: Db, store: ObjectStore, graceS: number): Promise<{ orphanObjects: string[]; partials: number }> {
  const olderThan = new Date(Date.now() - graceS * 1000);
  const orphanObjects = await deleteOrphans(store, {
    prefix: 'projects/',
    match: CHECKPOINT_OBJECT,
    olderThan,
    async kept(keys) {
      const jobOf = (key: string) => CHECKPOINT_OBJECT.exec(key)![1]!;
      const recorded = await db.checkpoint.findMany({ where: { objectKey: { in: keys } }, select: { objectKey: true } });
      const jobs = await db.job.findMany({ where: { id: { in: [...new Set(keys.map(jobOf))] } }, select: { id: true, status: true } });
      const live = new Set(jobs.filter((j) => !TERMINAL_STATUSES.includes(j.status as JobStatus)).map((j) => j.id));
      return new Set([...recorded.map((r) => r.objectKey), ...keys.filter((key) => live.has(jobOf(key)))]);
    },
  });
  return { orphanObjects, partials: await removeStalePartials(store, olderThan) };
}
