import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDataset } from './read-dataset.js';
import { encodeImage, readError, solidImage, useTempDir, writeBytes } from './test-fixtures.js';

// 2x2 RGB with four distinct pixels, to check exact decoding and HWC order.
const TINY = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);

const tmp = useTempDir();
let root: string;
beforeAll(async () => {
  root = tmp.path;
  // Classes: cats (2 PNG), dogs (1 JPEG grey + 1 PNG in a nested folder); junk that must be skipped.
  await writeBytes(join(root, 'labelled/dogs/b.jpg'), await solidImage(8, 8, 1, 200, 'jpeg'));
  await writeBytes(join(root, 'labelled/dogs/sub/a.png'), await solidImage(8, 8, 3, 100));
  await writeBytes(join(root, 'labelled/cats/2.png'), await solidImage(8, 8, 3, 50));
  await writeBytes(join(root, 'labelled/cats/1.png'), await solidImage(8, 8, 3, 0));
  await writeBytes(join(root, 'labelled/cats/.DS_Store'), 'junk');
  await writeBytes(join(root, 'labelled/cats/Thumbs.db'), 'junk');
  await writeBytes(join(root, 'labelled/notes.txt'), 'not an image');
  await writeBytes(join(root, 'labelled/empty/readme.md'), 'no images: not a class');

  await writeBytes(join(root, 'flat/x.png'), await encodeImage(TINY, { width: 2, height: 2, channels: 3 }));
  await writeBytes(join(root, 'flat/y.png'), await solidImage(2, 2, 1, 77));

  await writeBytes(join(root, 'sizes/a.png'), await solidImage(12, 6, 3, 10));
  await writeBytes(join(root, 'sizes/b.jpg'), await solidImage(5, 9, 3, 10, 'jpeg'));
  await writeBytes(join(root, 'sizes/c.webp'), await sharp({ create: { width: 7, height: 7, channels: 4, background: '#ff000080' } }).webp().toBuffer());
  await writeBytes(join(root, 'sizes/d.gif'), await sharp({ create: { width: 3, height: 4, channels: 3, background: '#00ff00' } }).gif().toBuffer());

  await writeBytes(join(root, 'corrupt/good.png'), await solidImage(4, 4, 3, 1));
  await writeBytes(join(root, 'corrupt/bad.png'), 'this is not a png');

  await writeBytes(join(root, 'mixed/loose.png'), await solidImage(4, 4, 3, 1));
  await writeBytes(join(root, 'mixed/cls/a.png'), await solidImage(4, 4, 3, 1));
});

describe('ImageFolder', () => {
  it('labels images by their class folder, classes sorted by name, junk and non-images skipped', async () => {
    const ds = await readDataset(join(root, 'labelled'));
    expect(ds.classNames).toEqual(['cats', 'dogs']);
    expect(Array.from(ds.labels!)).toEqual([0, 0, 1, 1]);
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([4, 8, 8, 3]);
    expect(ds.pixels.length).toBe(4 * 8 * 8 * 3);
    // Sorted within a class by path: cats/1.png (0) before cats/2.png (50); dogs/b.jpg (grey 200) before dogs/sub/a.png.
    const first = (i: number) => ds.pixels[i * 8 * 8 * 3]!;
    expect([first(0), first(1), first(3)]).toEqual([0, 50, 100]);
    expect(Math.abs(first(2) - 200)).toBeLessThanOrEqual(2);
  });

  it('reads a flat folder as unlabelled, with exact pixel values', async () => {
    const ds = await readDataset({ format: 'imagefolder', path: join(root, 'flat') });
    expect(ds.labels).toBeUndefined();
    expect(ds.classNames).toBeUndefined();
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([2, 2, 2, 3]);
    expect(Array.from(ds.pixels.subarray(0, 12))).toEqual(Array.from(TINY));
    expect(Array.from(ds.pixels.subarray(12))).toEqual(new Array(12).fill(77));
  });

  it('converts to one channel', async () => {
    const ds = await readDataset(join(root, 'flat'), { channels: 1 });
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([2, 2, 2, 1]);
    expect(Array.from(ds.pixels.subarray(4))).toEqual([77, 77, 77, 77]);
  });

  it('resizes every image to imageSize, dropping alpha', async () => {
    const ds = await readDataset(join(root, 'sizes'), { imageSize: { height: 4, width: 6 } });
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([4, 4, 6, 3]);
    expect(ds.pixels.length).toBe(4 * 4 * 6 * 3);
    expect(Array.from(ds.pixels.subarray(3 * 72, 3 * 72 + 3))).toEqual([0, 255, 0]);
    const square = await readDataset(join(root, 'sizes'), { imageSize: 3, channels: 1, limit: 2 });
    expect([square.count, square.height, square.width, square.channels]).toEqual([2, 3, 3, 1]);
  });

  it('asks for imageSize when native sizes differ', async () => {
    const err = await readError(readDataset(join(root, 'sizes')));
    expect(err.code).toBe('inconsistent_size');
    expect(err.message).toMatch(/imageSize/);
  });

  it('reports a corrupt image by name', async () => {
    const err = await readError(readDataset(join(root, 'corrupt')));
    expect(err.code).toBe('unreadable_image');
    expect(err.file).toBe(join(root, 'corrupt/bad.png'));
    expect(err.message).toContain('bad.png');
  });

  it('rejects images larger than maxPixelsPerImage before decoding them', async () => {
    const err = await readError(readDataset(join(root, 'labelled'), { maxPixelsPerImage: 50 }));
    expect(err.code).toBe('too_large');
    expect(err.message).toContain('1.png');
  });

  it('rejects a decoded dataset larger than maxBytes', async () => {
    const err = await readError(readDataset(join(root, 'labelled'), { maxBytes: 700 }));
    expect(err.code).toBe('too_large');
    expect(err.file).toBe(join(root, 'labelled'));
    expect(err.message).toMatch(/4 images of 8x8x3 need 768 bytes/);
  });

  it('rejects images both in the root and in class folders', async () => {
    const err = await readError(readDataset(join(root, 'mixed')));
    expect(err.code).toBe('unsupported_format');
    expect(err.file).toContain('loose.png');
  });

  it('rejects invalid options', async () => {
    await expect(readDataset(join(root, 'flat'), { limit: 0 })).rejects.toThrow(RangeError);
    await expect(readDataset(join(root, 'flat'), { imageSize: 2.5 })).rejects.toThrow(RangeError);
  });

  it('reports missing and empty folders', async () => {
    expect((await readError(readDataset(join(root, 'nowhere')))).code).toBe('not_found');
    expect((await readError(readDataset(join(root, 'labelled/empty')))).code).toBe('empty_dataset');
  });

  it('stops walking a tree with more than maxFiles entries', async () => {
    const err = await readError(readDataset(join(root, 'labelled'), { maxFiles: 3 }));
    expect(err.code).toBe('too_many_files');
  });
});
