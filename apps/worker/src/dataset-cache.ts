import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, readdir, rename, rm, rmdir, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DatasetError, readDataset, showFileAs, type ImageDataset, type ReadOptions } from '@moco/data';
import { processAlive } from '@moco/service';
import { ObjectNotFoundError, parseS3Uri, S3Store, type ObjectStore } from '@moco/storage';
import type { DatasetCacheConfig, DatasetLocation } from '@moco/contracts';
import { UserError } from './protocol.js';

/**
 * The worker's dataset cache, shared by every process that names the same folder:
 *
 *   datasets/<id>/<object name>   the cached copy (its mtime is its last use)
 *   pins/<host>@<pid>@<uuid>/<name>   a hard link to a copy a process is reading
 *   partial/<host>@<pid>@<uuid>       a download in progress
 *
 * A reader pins a copy (a hard link, atomic) before it reads it, so eviction, which only removes
 * copies nobody links to (link count 1), never takes a dataset in use; and should it unlink one in
 * the instant a reader links it, the reader's link still holds the bytes. Pins and downloads of
 * processes of this host that died are swept (those of other hosts sharing the folder once a day
 * old). Least recently used copies go first, once the cache is larger than its bound.
 */
const FOREIGN_LEFTOVER_MS = 24 * 3600_000;

/** The cache's folder and bound, as the trainer child is told them. */
export type DatasetCache = DatasetCacheConfig;

export interface PinnedDataset {
  /** The dataset's bytes, under the object's own name, readable until `release`. */
  file: string;
  release(): Promise<void>;
}

export async function pinDataset(store: ObjectStore, cache: DatasetCache, ds: DatasetLocation): Promise<PinnedDataset> {
  const { source, key } = objectOf(store, ds);
  // Under the object's own name: readDataset judges a file by its content, but finds an idx label file by name.
  const name = path.posix.basename(key);
  const entry = path.join(cache.dir, 'datasets', ds.id, name);
  const pins = path.join(cache.dir, 'pins', ownName());
  const file = path.join(pins, name);
  await mkdir(pins, { recursive: true });
  const release = () => rm(pins, { recursive: true, force: true });
  try {
    if (await linked(entry, file)) {
      const now = new Date();
      await utimes(file, now, now);
    } else {
      await download(source, key, ds, { temp: path.join(cache.dir, 'partial', ownName()), entry, pin: file });
      await sweepDatasetCache(cache);
    }
    return { file, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/**
 * Reads a dataset through the cache, pinned while it is read (into memory), so eviction by this or
 * another worker cannot take it meanwhile. Problems with its data name the dataset (`dataset <id>
 * (<file>)`), not the cache path, since they become the job's user-facing error message.
 */
export async function readStoredDataset(store: ObjectStore, cache: DatasetCache, ds: DatasetLocation, options: ReadOptions): Promise<ImageDataset> {
  const pinned = await pinDataset(store, cache, ds);
  try {
    return await readDataset(pinned.file, options);
  } catch (err) {
    throw err instanceof DatasetError ? showFileAs(err, pinned.file, `dataset ${ds.id} (${path.basename(pinned.file)})`) : err;
  } finally {
    await pinned.release();
  }
}

/** Downloads to a private file, pins it, then puts it in the cache (the whole file or none). */
async function download(source: ObjectStore, key: string, ds: DatasetLocation, to: { temp: string; entry: string; pin: string }): Promise<void> {
  const { temp, entry, pin } = to;
  await mkdir(path.dirname(temp), { recursive: true });
  try {
    const body = await source.get(key).catch((err: unknown) => {
      throw err instanceof ObjectNotFoundError ? new DatasetError('not_found', `dataset ${ds.id}`, 'its stored file is missing', { cause: err }) : err;
    });
    await pipeline(body, createWriteStream(temp));
    await link(temp, pin);
    await mkdir(path.dirname(entry), { recursive: true });
    await rename(temp, entry);
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * Removes what dead processes left (pins, partial downloads), then least recently used copies nobody
 * reads until the cache fits its bound. After each download, and when a worker starts.
 */
export async function sweepDatasetCache(cache: DatasetCache): Promise<void> {
  for (const folder of ['pins', 'partial']) {
    for (const name of await list(path.join(cache.dir, folder))) {
      const leftover = path.join(cache.dir, folder, name);
      if (await abandoned(name, leftover)) await rm(leftover, { recursive: true, force: true });
    }
  }
  const copies: { file: string; bytes: number; usedAt: number; pinned: boolean }[] = [];
  const datasets = path.join(cache.dir, 'datasets');
  for (const id of await list(datasets)) {
    for (const name of await list(path.join(datasets, id))) {
      const file = path.join(datasets, id, name);
      const s = await stat(file).catch(() => null);
      if (s) copies.push({ file, bytes: s.size, usedAt: s.mtimeMs, pinned: s.nlink > 1 });
    }
  }
  let total = copies.reduce((sum, c) => sum + c.bytes, 0);
  for (const c of copies.sort((a, b) => a.usedAt - b.usedAt)) {
    if (total <= cache.maxBytes) break;
    if (c.pinned) continue;
    await rm(c.file, { force: true });
    await rmdir(path.dirname(c.file)).catch(() => {}); // another copy, or a download, may be arriving there
    total -= c.bytes;
  }
}

/** A name no other process, nor another call of this one, uses; host and pid say whose it is, for the sweep. */
function ownName(): string {
  return `${hostname()}@${process.pid}@${randomUUID()}`;
}

/** Left by a dead process: its pid is gone from this host, or (another host's, whose pids mean nothing here) it is a day old. */
async function abandoned(name: string, leftover: string): Promise<boolean> {
  const [host, pid] = name.split('@');
  if (host === hostname()) return !processAlive(Number(pid));
  const s = await stat(leftover).catch(() => null);
  return s !== null && Date.now() - s.mtimeMs > FOREIGN_LEFTOVER_MS;
}

async function linked(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
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
