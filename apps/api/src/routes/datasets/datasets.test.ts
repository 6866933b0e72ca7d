import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { CHECKSUM_HEADER } from '@moco/contracts';
import { decodeImage, loadFashionMnist } from '@moco/data';
import { createObjectStore } from '@moco/storage';
import { zipSync } from 'fflate';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { idxFile, solidImage, tarArchive } from '../../../../../libs/data/src/test-fixtures.js';
import { buildApp } from '../../app.js';
import type { CreatedKey } from '../../keys/key-service.js';
import { insertDataset } from '../../testing/fixtures.js';
import { bearer, useTestApp } from '../../testing/test-app.js';
import { upload } from '../../testing/upload.js';

const t = useTestApp();
let key: CreatedKey;
let fmnist: { images: Buffer; labels: Buffer };

beforeAll(async () => {
  key = await t.current.createKey('datasets');
  const ds = await loadFashionMnist('test', { limit: 300 });
  fmnist = { images: idxFile([300, 28, 28], ds.pixels), labels: idxFile([300], Uint8Array.from(ds.labels!)) };
});

async function petsTree(): Promise<{ name: string; data: Buffer }[]> {
  const [light, dark] = await Promise.all([solidImage(8, 8, 3, 220), solidImage(8, 8, 3, 30)]);
  return [
    { name: 'pets/cats/1.png', data: light },
    { name: 'pets/cats/2.png', data: dark },
    { name: 'pets/dogs/1.png', data: light },
    { name: 'pets/dogs/2.png', data: dark },
    { name: 'pets/dogs/3.png', data: light },
  ];
}

describe('POST /v1/datasets (upload)', () => {
  it('stores a tar.gz ImageFolder tree with its statistics', async () => {
    const tgz = await tarArchive(await petsTree(), true);
    const res = await upload(t.current, key.key, tgz, { name: 'pets', filename: 'pets.tar.gz' }, { 'content-type': 'application/gzip' });
    expect(res.status).toBe(201);
    const ds = res.json;
    const objectKey = `projects/${key.project_id}/datasets/${ds.id}/pets.tar.gz`;
    expect(ds).toMatchObject({
      project_id: key.project_id,
      name: 'pets',
      status: 'ready',
      source: 'upload',
      format: 'tar.gz',
      source_uri: null,
      download_url: `/v1/datasets/${ds.id}/download`,
      bytes: tgz.length,
      image_count: 5,
      height: 8,
      width: 8,
      channels: 3,
      class_names: ['cats', 'dogs'],
      class_counts: [2, 3],
      labelled: true,
      error: null,
    });
    expect(Buffer.compare(await t.current.store.getBytes(objectKey), tgz)).toBe(0);
    expect(await t.current.tempFiles()).toEqual([]);
    const got = await t.current.app.inject({ url: `/v1/datasets/${ds.id}`, headers: bearer(key) });
    expect(got.json()).toEqual(ds);
    // Its download link gives the file back, whole, with its checksum; no other project sees it.
    const file = await fetch(`${t.current.url}${ds.download_url}`, { headers: bearer(key) });
    const bytes = Buffer.from(await file.arrayBuffer());
    expect(Buffer.compare(bytes, tgz)).toBe(0);
    expect(file.headers.get('content-length')).toBe(String(tgz.length));
    expect(file.headers.get('content-disposition')).toBe('attachment; filename="pets.tar.gz"');
    expect(file.headers.get(CHECKSUM_HEADER)).toBe(createHash('sha256').update(tgz).digest('hex'));
    const stranger = await t.current.createKey('datasets-stranger');
    expect((await t.current.app.inject({ url: ds.download_url, headers: bearer(stranger) })).statusCode).toBe(404);
    // A row whose object is gone from the store: 404 naming it, not a 500.
    const orphan = await insertDataset(t.current.db, stranger.project_id);
    const gone = await t.current.app.inject({ url: orphan.download_url!, headers: bearer(stranger) });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.message).toBe(`the stored file of dataset ${orphan.id} is missing`);
  });

  it('stores a zip, an idx pair in a tar and a single gzipped idx file', async () => {
    const zip = zipSync(Object.fromEntries((await petsTree()).map((e) => [e.name, e.data])));
    const zipped = await upload(t.current, key.key, zip);
    expect(zipped.status).toBe(201);
    expect(zipped.json).toMatchObject({ format: 'zip', image_count: 5, name: 'dataset.zip' });
    expect(await t.current.objects(`projects/${key.project_id}/datasets/${zipped.json.id}/`)).toEqual([
      `projects/${key.project_id}/datasets/${zipped.json.id}/dataset.zip`,
    ]);

    const pair = await tarArchive([
      { name: 'fmnist/t10k-images-idx3-ubyte', data: fmnist.images },
      { name: 'fmnist/t10k-labels-idx1-ubyte', data: fmnist.labels },
    ]);
    const idxPair = await upload(t.current, key.key, pair, { filename: 'fmnist.tar' });
    expect(idxPair.status).toBe(201);
    expect(idxPair.json).toMatchObject({ format: 'tar', image_count: 300, height: 28, width: 28, channels: 1, labelled: true });

    const single = await upload(t.current, key.key, gzipSync(fmnist.images));
    expect(single.status).toBe(201);
    expect(single.json).toMatchObject({ format: 'idx.gz', image_count: 300, channels: 1, labelled: false, name: 'dataset-images-idx3-ubyte.gz' });
  });

  it('keeps thumbnails of a few images, classes in turn, and the images per class', async () => {
    const pair = await tarArchive([
      { name: 'fmnist/t10k-images-idx3-ubyte', data: fmnist.images },
      { name: 'fmnist/t10k-labels-idx1-ubyte', data: fmnist.labels },
    ]);
    // A project of its own: the listing test below counts this project's datasets.
    const owner = await t.current.createKey('samples');
    const ds = (await upload(t.current, owner.key, pair, { filename: 'fmnist-samples.tar' })).json;
    const labels = [...fmnist.labels.subarray(8)];
    const expected = Array.from({ length: 10 }, (_, c) => labels.filter((l) => l === c).length);
    expect(ds.class_counts).toEqual(expected);
    const samples = async (query: string) => t.current.app.inject({ url: `/v1/datasets/${ds.id}/samples${query}`, headers: bearer(owner) });
    const ten = (await samples('?n=10')).json();
    expect(ten.dataset_id).toBe(ds.id);
    // Every class once, in order; each thumbnail is the image itself (28x28 stays whole).
    expect(ten.data.map((s: { label: number }) => s.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const first = labels.indexOf(0);
    const png = Buffer.from(ten.data[0].png, 'base64');
    const image = await decodeImage(png, 'thumbnail.png', { channels: 1, maxPixels: 784 });
    expect([image.width, image.height]).toEqual([28, 28]);
    expect(Buffer.compare(Buffer.from(image.data), fmnist.images.subarray(16 + first * 784, 16 + (first + 1) * 784))).toBe(0);
    expect((await samples('')).json().data).toHaveLength(32);
    expect((await samples('?n=65')).json().error).toMatchObject({ code: 'invalid_parameter', param: 'n' });
    expect((await t.current.app.inject({ url: `/v1/datasets/${ds.id}/samples`, headers: bearer(key) })).statusCode).toBe(404);
  });

  it('lists datasets newest first with cursor pagination', async () => {
    const { app } = t.current;
    const first = (await app.inject({ url: '/v1/datasets?limit=3', headers: bearer(key) })).json();
    expect(first.data).toHaveLength(3);
    expect(first.has_more).toBe(true);
    const second = (await app.inject({ url: `/v1/datasets?limit=3&after=${first.next_cursor}`, headers: bearer(key) })).json();
    expect(second).toMatchObject({ has_more: false, next_cursor: null });
    const ids = [...first.data, ...second.data].map((d: { id: string }) => d.id);
    expect(ids).toHaveLength(4);
    expect([...ids].sort().reverse()).toEqual(ids);
  });

  it('rejects bad query values in the error shape', async () => {
    const res = await upload(t.current, key.key, Buffer.from('x'), { filename: '../evil.tar' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'invalid_parameter', param: 'filename' });
    const limit = await t.current.app.inject({ url: '/v1/datasets?limit=0', headers: bearer(key) });
    expect(limit.json().error).toMatchObject({ code: 'invalid_parameter', param: 'limit' });
  });
});

describe('POST /v1/datasets (register an s3:// object)', () => {
  it('validates the object in place and records its URI without copying it', async () => {
    const { store, s3, app } = t.current;
    const tgz = await tarArchive(await petsTree(), true);
    await store.put('external/pets.tgz', tgz);
    const source = `s3://${s3.bucket}/external/pets.tgz`;
    const res = await app.inject({ method: 'POST', url: '/v1/datasets', headers: bearer(key), payload: { source, name: 'ext' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ source: 's3', source_uri: source, download_url: null, name: 'ext', image_count: 5, bytes: tgz.length, format: 'tar.gz' });
    // Registered in place: there is no stored file of the service's to download.
    expect((await app.inject({ url: `/v1/datasets/${res.json().id}/download`, headers: bearer(key) })).statusCode).toBe(404);
    expect(await t.current.objects(`projects/${key.project_id}/datasets/${res.json().id}/`)).toEqual([]);

    const missing = await app.inject({ method: 'POST', url: '/v1/datasets', headers: bearer(key), payload: { source: `${source}.nope` } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toMatchObject({ code: 'invalid_parameter', param: 'source', message: expect.stringMatching(/no object/) });
    const bad = await app.inject({ method: 'POST', url: '/v1/datasets', headers: bearer(key), payload: { source: 'http://x/y' } });
    expect(bad.json().error).toMatchObject({ code: 'invalid_parameter', param: 'source' });
  });

  it('refuses registration when objects are stored on a local disk', async () => {
    const { db, queue, config } = t.current;
    const store = createObjectStore({ kind: 'local', root: t.current.tempDir });
    const app = await buildApp({ db, queue, store, config: { ...config, STORAGE_KIND: 'local' }, logger: pino({ level: 'silent' }) });
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/datasets', headers: bearer(key), payload: { source: 's3://b-1/k.tar' } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/STORAGE_KIND=s3/);
    } finally {
      await app.close();
    }
  });
});
