import { LocalFolderStore } from './local-store.js';
import type { ObjectStore } from './object-store.js';

export interface OrphanSweep {
  /** Where to look, e.g. `projects/`. */
  prefix: string;
  /** The keys this sweep is about (a dataset's, a checkpoint's); others are left alone. */
  match: RegExp;
  /** Which of `keys` are still wanted (a row names them, or their writer may still record them). */
  kept(keys: string[]): Promise<Set<string>>;
  /** Only objects written before this are deleted, so a writer that is about to record its object is not raced. */
  olderThan: Date;
}

/**
 * Deletes the objects that nothing records: the leftovers of a writer that died between writing
 * an object and recording it. Returns their keys.
 */
export async function deleteOrphans(store: ObjectStore, sweep: OrphanSweep): Promise<string[]> {
  const candidates: string[] = [];
  for await (const { key } of store.list(sweep.prefix)) if (sweep.match.test(key)) candidates.push(key);
  const kept = candidates.length > 0 ? await sweep.kept(candidates) : new Set<string>();
  const deleted: string[] = [];
  for (const key of candidates.filter((k) => !kept.has(k))) {
    const info = await store.head(key);
    if (info?.lastModified && info.lastModified < sweep.olderThan) {
      await store.delete(key);
      deleted.push(key);
    }
  }
  return deleted;
}

/**
 * Removes what puts that died mid-write left behind, where the store can see it: a local folder's
 * temp files. (An S3 bucket's incomplete multipart uploads are not objects; an
 * AbortIncompleteMultipartUpload lifecycle rule on the bucket removes them.)
 */
export async function removeStalePartials(store: ObjectStore, olderThan: Date): Promise<number> {
  return store instanceof LocalFolderStore ? store.removeStalePartials(olderThan) : 0;
}
