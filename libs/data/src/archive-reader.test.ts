import { join } from 'node:path';
import { gzipSync, zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDataset } from './read-dataset.js';
import { readError, solidImage, tarArchive, useTempDir, writeBytes } from './test-fixtures.js';

const tmp = useTempDir();
let dir: string;
let tree: { name: string; data: Uint8Array | string }[];
beforeAll(async () => {
  dir = tmp.path;
  const red = await solidImage(6, 6, 3, 200);
  const dark = await solidImage(6, 6, 3, 20, 'jpeg');
  // One top-level folder wraps the tree; junk beside it must not count as a second one.
  tree = [
    { name: 'pets/dogs/d1.png', data: red },
    { name: 'pets/cats/c1.jpg', data: dark },
    { name: 'pets/cats/c2.png', data: red },
    { name: '__MACOSX/pets/cats/._c1.jpg', data: 'resource fork' },
    { name: 'pets/.hidden.png', data: 'dotfile' },
  ];
});

function expectPets(ds: Awaited<ReturnType<typeof readDataset>>): void {
  expect(ds.classNames).toEqual(['cats', 'dogs']);
  expect(Array.from(ds.labels!)).toEqual([0, 0, 1]);
  expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([3, 6, 6, 3]);
  expect(ds.pixels[2 * 6 * 6 * 3]).toBe(200);
}

describe('archives', () => {
  it('reads tar, tar.gz and zip by their magic bytes, whatever their names', async () => {
    const tarFile = await writeBytes(join(dir, 'a.zip'), await tarArchive(tree));
    const tgzFile = await writeBytes(join(dir, 'b.tar'), await tarArchive(tree, true));
    const zipFile = await writeBytes(
      join(dir, 'c.tgz'),
      zipSync(Object.fromEntries(tree.map((e) => [e.name, Buffer.from(e.data)]))),
    );
    expectPets(await readDataset(tarFile));
    expectPets(await readDataset({ format: 'archive', path: tgzFile }));
    expectPets(await readDataset(zipFile));
  });

  it('resizes and converts images from an archive', async () => {
    const file = await writeBytes(join(dir, 'resize.tgz'), await tarArchive(tree, true));
    const ds = await readDataset(file, { imageSize: 3, channels: 1, limit: 2 });
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([2, 3, 3, 1]);
    expect(Array.from(ds.labels!)).toEqual([0, 0]);
  });

  it('rejects path traversal in tar and zip', async () => {
    const png = await solidImage(2, 2, 3, 1);
    const tarFile = await writeBytes(join(dir, 'evil.tar'), await tarArchive([{ name: 'ok/a.png', data: png }, { name: '../evil.png', data: png }]));
    const zipFile = await writeBytes(join(dir, 'evil.zip'), zipSync({ 'ok/a.png': png, 'x/../../evil.png': png }));
    const absolute = await writeBytes(join(dir, 'abs.zip'), zipSync({ '/etc/evil.png': png }));
    for (const file of [tarFile, zipFile, absolute]) {
      const err = await readError(readDataset(file));
      expect(err.code).toBe('path_traversal');
      expect(err.message).toContain('evil.png');
    }
  });

  it('rejects links', async () => {
    const tarFile = await writeBytes(join(dir, 'link.tar'), await tarArchive([{ name: 'cls/a.png', type: 'symlink', linkname: '/etc/passwd' }]));
    const hard = await writeBytes(join(dir, 'hard.tar'), await tarArchive([{ name: 'cls/a.png', type: 'link', linkname: 'cls/b.png' }]));
    const zipFile = await writeBytes(
      join(dir, 'link.zip'),
      zipSync({ 'cls/a.png': [new TextEncoder().encode('/etc/passwd'), { os: 3, attrs: 0o120777 << 16 }] }),
    );
    for (const file of [tarFile, hard, zipFile]) {
      const err = await readError(readDataset(file));
      expect(err.code).toBe('unsafe_entry');
      expect(err.file).toContain('cls/a.png');
    }
  });

  it('stops unpacking a bomb at maxBytes', async () => {
    const zeros = new Uint8Array(8 * 1024 * 1024);
    const tgz = await tarArchive([{ name: 'cls/zeros.png', data: zeros }], true);
    expect(tgz.length).toBeLessThan(50_000);
    const tgzFile = await writeBytes(join(dir, 'bomb.tgz'), tgz);
    const zipFile = await writeBytes(join(dir, 'bomb.zip'), zipSync({ 'cls/zeros.png': zeros }, { level: 9 }));
    for (const file of [tgzFile, zipFile]) {
      const err = await readError(readDataset(file, { maxBytes: 1024 * 1024 }));
      expect(err.code).toBe('too_large');
      expect(err.file).toBe(file);
    }
  });

  it('stops at maxFiles entries', async () => {
    const entries = Array.from({ length: 20 }, (_, i) => ({ name: `cls/${i}.txt`, data: 'x' }));
    const tarFile = await writeBytes(join(dir, 'many.tar'), await tarArchive(entries));
    const zipFile = await writeBytes(join(dir, 'many.zip'), zipSync(Object.fromEntries(entries.map((e) => [e.name, Buffer.from(e.data)]))));
    for (const file of [tarFile, zipFile]) expect((await readError(readDataset(file, { maxFiles: 10 }))).code).toBe('too_many_files');
  });

  it('reports files that are no archive, and corrupt archives', async () => {
    const text = await writeBytes(join(dir, 'data.tar.gz'), 'just text');
    expect((await readError(readDataset(text))).code).toBe('unsupported_format');
    const notTar = await writeBytes(join(dir, 'text.gz'), gzipSync(new TextEncoder().encode('just text')));
    expect((await readError(readDataset(notTar))).code).toBe('unsupported_format');
    const whole = await tarArchive(tree, true);
    const truncated = await writeBytes(join(dir, 'truncated.tgz'), whole.subarray(0, whole.length - 400));
    const err = await readError(readDataset(truncated));
    expect(err.code).toBe('bad_archive');
    expect(err.file).toBe(truncated);
  });

  it('reports a corrupt image inside an archive by archive and entry name', async () => {
    const file = await writeBytes(join(dir, 'corrupt.tar'), await tarArchive([{ name: 'cls/good.png', data: await solidImage(2, 2, 3, 0) }, { name: 'cls/bad.png', data: 'not a png' }]));
    const err = await readError(readDataset(file));
    expect(err.code).toBe('unreadable_image');
    expect(err.file).toBe(`${file}:cls/bad.png`);
  });
});
