import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetError, tarArchive } from '@moco/data';
import { LocalFolderStore } from '@moco/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStoredDataset, removeStaleDownloads } from './dataset-cache.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'moco-cache-test-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('readStoredDataset', () => {
  it('names the dataset, never the cache path, in a problem with its data', async () => {
    const store = new LocalFolderStore(path.join(dir, 'objects'));
    const cacheDir = path.join(dir, 'cache');
    await store.put('ds/pets.tar', await tarArchive([{ name: 'cls/bad.png', data: 'not a png' }]));
    const err = await readStoredDataset(store, cacheDir, { id: 'ds_1', objectKey: 'ds/pets.tar', uri: 's3://b/ds/pets.tar' }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as DatasetError).code).toBe('unreadable_image');
    expect((err as DatasetError).message).toMatch(/^dataset ds_1 \(pets\.tar\):cls\/bad\.png: /);
    expect((err as DatasetError).message).not.toContain(dir);
  });

  it('removes downloads that a dead worker left half done, once older than the grace', async () => {
    const cacheDir = path.join(dir, 'stale-cache');
    const folder = path.join(cacheDir, 'datasets', 'ds_2');
    await mkdir(folder, { recursive: true });
    const dead = `pets.tar.partial-${randomUUID()}`;
    const live = `pets.tar.partial-${randomUUID()}`;
    await writeFile(path.join(folder, dead), 'half');
    await utimes(path.join(folder, dead), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await writeFile(path.join(folder, live), 'half');
    await writeFile(path.join(folder, 'pets.tar'), 'whole');
    expect(await removeStaleDownloads(cacheDir, 30)).toEqual([`ds_2/${dead}`]);
    expect((await readdir(folder)).sort()).toEqual(['pets.tar', live].sort());
  });
});
