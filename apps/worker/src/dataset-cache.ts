import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DatasetError, readDataset, showFileAs, type ImageDataset, type ReadOptions } from '@moco/data';
import { ObjectNotFoundError, parseS3Uri, S3Store, type ObjectStore } from '@moco/storage';
import { UserError, type DatasetLocation } from './protocol.js';

/**
 * The local copy of a dataset's file, `<cacheDir>/datasets/<id>/<object name>`, downloaded on
 * first use. Datasets never change, so a copy is reused. The download is renamed into place, so
 * processes sharing the cache see the whole file or none.
 */
export async function localDataset(store: ObjectStore, cacheDir: string, ds: DatasetLocation): Promise<string> {
  const { source, key } = objectOf(store, ds);
  // Under the object's own name: readDataset judges a file by its content, but finds an idx label file by name.
  const file = path.resolve(cacheDir, 'datasets', ds.id, path.posix.basename(key));
  if (await stat(file).then(() => true, () => false)) return file;
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.partial-${randomUUID()}`;
  try {
    const body = await source.get(key).catch((err: unknown) => {
      throw err instanceof ObjectNotFoundError ? new DatasetError('not_found', ds.uri, 'the dataset object is missing', { cause: err }) : err;
    });
    await pipeline(body, createWriteStream(temp));
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
  return file;
}

/**
 * Removes the downloads that workers killed mid-download left in the cache, once not written for
 * `graceS` (a live download writes as it goes; workers on this host may share the cache).
 */
export async function removeStaleDownloads(cacheDir: string, graceS: number): Promise<string[]> {
  const root = path.resolve(cacheDir, 'datasets');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  const olderThan = Date.now() - graceS * 1000;
  const removed: string[] = [];
  for (const entry of entries.filter((e) => e.isFile() && /\.partial-[0-9a-f-]{36}$/.test(e.name))) {
    const file = path.join(entry.parentPath, entry.name);
    const info = await stat(file).catch(() => null);
    if (info && info.mtimeMs < olderThan) {
      await rm(file, { force: true });
      removed.push(path.relative(root, file));
    }
  }
  return removed;
}

/**
 * Reads a dataset through the cache. Problems with its data name the dataset (`dataset <id>
 * (<file>)`), not the cache path, since they become the job's user-facing error message.
 */
export async function readStoredDataset(store: ObjectStore, cacheDir: string, ds: DatasetLocation, options: ReadOptions): Promise<ImageDataset> {
  const file = await localDataset(store, cacheDir, ds);
  try {
    return await readDataset(file, options);
  } catch (err) {
    throw err instanceof DatasetError ? showFileAs(err, file, `dataset ${ds.id} (${path.basename(file)})`) : err;
  }
}

/** An upload is an object of this deployment's store; a registered dataset is an object in any bucket its credentials can read. */
function objectOf(store: ObjectStore, ds: DatasetLocation): { source: ObjectStore; key: string } {
  if (ds.objectKey) return { source: store, key: ds.objectKey };
  if (!ds.uri.startsWith('s3://')) throw new UserError('dataset_unreachable', `dataset ${ds.id} has no stored object and its URI ${ds.uri} is not s3://`);
  if (!(store instanceof S3Store)) {
    throw new UserError('dataset_unreachable', `${ds.uri} is in S3, but this worker's object store is not (STORAGE_KIND=s3)`);
  }
  const { bucket, prefix } = parseS3Uri(ds.uri);
  return { source: store.forBucket(bucket), key: prefix };
}
