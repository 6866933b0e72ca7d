import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetError, tarArchive } from '@moco/data';
import { createObjectStore, startTestS3Server, type ObjectStore, type ObjectStoreConfig, type TestS3Server } from '@moco/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinDataset, readStoredDataset, sweepDatasetCache, type DatasetCache } from './dataset-cache.js';
import type { DatasetLocation } from '@moco/contracts';

const BYTES = 1000;
const HOLDER = path.join(import.meta.dirname, 'testing/hold-dataset.ts');

let s3: TestS3Server;
let storage: ObjectStoreConfig;
let store: ObjectStore;
const contents = new Map<string, Buffer>();
const folders: string[] = [];

beforeAll(async () => {
  s3 = await startTestS3Server();
  storage = { kind: 's3', ...s3 };
  store = createObjectStore(storage);
  for (const id of ['a', 'b', 'c']) {
    contents.set(id, randomBytes(BYTES));
    await store.put(`datasets/${id}.tar`, contents.get(id)!);
  }
});

afterAll(async () => {
  await s3?.close();
  await Promise.all(folders.map((f) => rm(f, { recursive: true, force: true })));
});

async function newCache(maxBytes: number): Promise<DatasetCache> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dataset-cache-'));
  folders.push(dir);
  return { dir, maxBytes };
}

const location = (id: string): DatasetLocation => ({ id, objectKey: `datasets/${id}.tar`, uri: `s3://${s3.bucket}/datasets/${id}.tar` });
const cached = async (cache: DatasetCache) => (await readdir(path.join(cache.dir, 'datasets'))).sort();
/** Pins, checks the bytes, releases: one use of the dataset. */
async function use(cache: DatasetCache, id: string): Promise<void> {
  const pinned = await pinDataset(store, cache, location(id));
  expect(await readFile(pinned.file)).toEqual(contents.get(id));
  await pinned.release();
  await new Promise((r) => setTimeout(r, 20)); // distinct last-use times
}

describe('the dataset cache', () => {
  it('keeps within its bound by evicting the least recently used copies', async () => {
    const cache = await newCache(2.5 * BYTES);
    await use(cache, 'a');
    await use(cache, 'b');
    await use(cache, 'a'); // a hit: b is now the least recently used
    expect(await cached(cache)).toEqual(['a', 'b']);
    await use(cache, 'c');
    expect(await cached(cache)).toEqual(['a', 'c']);
    await use(cache, 'b'); // downloaded again; a goes
    expect(await cached(cache)).toEqual(['b', 'c']);
    expect(await readdir(path.join(cache.dir, 'pins'))).toEqual([]);
  });

  it('never evicts a dataset another process is reading, and sweeps what a killed process left', async () => {
    const cache = await newCache(BYTES);
    const holder = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), HOLDER, JSON.stringify({ storage, cache, location: location('a') })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(holder, 'exit');
    try {
      const [line] = (await Promise.race([
        once(holder.stdout!, 'data'),
        exited.then(() => Promise.reject(new Error('the other process exited before it pinned its dataset'))),
      ])) as [Buffer];
      const held = line.toString().trim();
      await use(cache, 'b');
      await use(cache, 'c'); // past the bound: b goes, a is read by the other process
      expect(await cached(cache)).toEqual(['a', 'c']);
      expect(await readFile(held)).toEqual(contents.get('a'));
    } finally {
      holder.kill('SIGKILL');
      await exited;
    }
    await use(cache, 'b'); // the dead holder's pin is swept, so a can go now
    expect(await cached(cache)).toEqual(['b']);
    expect(await readdir(path.join(cache.dir, 'pins'))).toEqual([]);
  });

  it('sweeps the downloads a dead process left half done, and keeps live ones', async () => {
    const cache = await newCache(10 * BYTES);
    await mkdir(path.join(cache.dir, 'partial'), { recursive: true });
    // pid 2^22 + 1 is above Linux's pid limit: no live process has it.
    const dead = `${hostname()}@${2 ** 22 + 1}@x`;
    const live = `${hostname()}@${process.pid}@y`;
    await writeFile(path.join(cache.dir, 'partial', dead), 'half');
    await writeFile(path.join(cache.dir, 'partial', live), 'half');
    await sweepDatasetCache(cache);
    expect(await readdir(path.join(cache.dir, 'partial'))).toEqual([live]);
  });

  it('names the dataset, never the cache path, in a problem with its data', async () => {
    const cache = await newCache(10 * BYTES);
    await store.put('datasets/pets.tar', await tarArchive([{ name: 'cls/bad.png', data: 'not a png' }]));
    const err = await readStoredDataset(store, cache, { id: 'ds_1', objectKey: 'datasets/pets.tar', uri: 's3://b/datasets/pets.tar' }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as DatasetError).code).toBe('unreadable_image');
    expect((err as DatasetError).message).toMatch(/^dataset ds_1 \(pets\.tar\):cls\/bad\.png: /);
    expect((err as DatasetError).message).not.toContain(cache.dir);
    expect(await readdir(path.join(cache.dir, 'pins')), 'the pin is released after a failed read').toEqual([]);
  });

  it('names a dataset whose stored file is missing by its id, never by its storage location', async () => {
    const cache = await newCache(10 * BYTES);
    const missing = { id: 'ds_gone', objectKey: 'datasets/gone.tar', uri: 'file:///srv/objects/datasets/gone.tar' };
    const err = await readStoredDataset(store, cache, missing, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as DatasetError).message).toMatch(/^dataset ds_gone: its stored file is missing/);
    expect((err as DatasetError).message).not.toMatch(/file:|s3:|datasets\//);
  });
});
