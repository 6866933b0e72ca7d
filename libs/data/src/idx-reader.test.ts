import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { readDataset } from './read-dataset.js';
import { idxFile, readError, tarArchive, useTempDir, writeBytes } from './test-fixtures.js';

// Three 2x3 images holding 0..17, labels 7, 8, 9.
const PIXELS = Uint8Array.from({ length: 18 }, (_, i) => i);
const IMAGES = idxFile([3, 2, 3], PIXELS);
const LABELS = idxFile([3], Uint8Array.of(7, 8, 9));

const tmp = useTempDir();
let dir: string;
beforeAll(async () => {
  dir = tmp.path;
  // Plain images with gzipped labels, and a gzipped test split beside them.
  await writeBytes(join(dir, 'mnist/train-images-idx3-ubyte'), IMAGES);
  await writeBytes(join(dir, 'mnist/train-labels-idx1-ubyte.gz'), gzipSync(LABELS));
  await writeBytes(join(dir, 'mnist/t10k-images-idx3-ubyte.gz'), gzipSync(idxFile([1, 2, 3], PIXELS.subarray(6, 12))));
  await writeBytes(join(dir, 'mnist/t10k-labels-idx1-ubyte.gz'), gzipSync(idxFile([1], Uint8Array.of(4))));
});

describe('idx', () => {
  it('reads plain and gzipped idx files from a folder, train split by default', async () => {
    const ds = await readDataset(join(dir, 'mnist'));
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([3, 2, 3, 1]);
    expect(Array.from(ds.pixels)).toEqual(Array.from(PIXELS));
    expect(Array.from(ds.labels!)).toEqual([7, 8, 9]);
  });

  it('reads the test split, and a single image file with its labels beside it', async () => {
    const test = await readDataset(join(dir, 'mnist'), { split: 'test' });
    expect(Array.from(test.pixels)).toEqual([6, 7, 8, 9, 10, 11]);
    expect(Array.from(test.labels!)).toEqual([4]);
    const single = await readDataset(join(dir, 'mnist/t10k-images-idx3-ubyte.gz'));
    expect(Array.from(single.labels!)).toEqual([4]);
  });

  it('reads an explicit idx pair, with a limit', async () => {
    const ds = await readDataset({ format: 'idx', images: join(dir, 'mnist/train-images-idx3-ubyte') }, { limit: 2 });
    expect(ds.count).toBe(2);
    expect(ds.labels).toBeUndefined();
    expect(Array.from(ds.pixels)).toEqual(Array.from(PIXELS.subarray(0, 12)));
  });

  it('converts channels and resizes', async () => {
    const rgb = await readDataset(join(dir, 'mnist'), { channels: 3 });
    expect([rgb.count, rgb.height, rgb.width, rgb.channels]).toEqual([3, 2, 3, 3]);
    expect(Array.from(rgb.pixels.subarray(0, 6))).toEqual([0, 0, 0, 1, 1, 1]);
    expect(Array.from(rgb.labels!)).toEqual([7, 8, 9]);
    const big = await readDataset(join(dir, 'mnist'), { imageSize: 8 });
    expect([big.count, big.height, big.width, big.channels]).toEqual([3, 8, 8, 1]);
  });

  it('reads idx files inside an archive', async () => {
    const file = await writeBytes(
      join(dir, 'mnist.tar.gz'),
      await tarArchive([{ name: 'mnist/train-images-idx3-ubyte.gz', data: gzipSync(IMAGES) }, { name: 'mnist/train-labels-idx1-ubyte', data: LABELS }], true),
    );
    const ds = await readDataset(file);
    expect(Array.from(ds.labels!)).toEqual([7, 8, 9]);
  });

  it('reports malformed idx files by name', async () => {
    const badMagic = await writeBytes(join(dir, 'bad/magic-idx3-ubyte'), idxFile([3, 2, 3], PIXELS).fill(9, 0, 4));
    const short = await writeBytes(join(dir, 'bad/short-idx3-ubyte'), idxFile([3, 2, 3], PIXELS.subarray(1)));
    const labels = await writeBytes(join(dir, 'bad/labels-idx1-ubyte'), idxFile([2], Uint8Array.of(1, 2)));
    for (const images of [badMagic, short]) {
      const err = await readError(readDataset({ format: 'idx', images }));
      expect(err.code).toBe('bad_idx');
      expect(err.file).toBe(images);
    }
    const err = await readError(readDataset({ format: 'idx', images: join(dir, 'mnist/train-images-idx3-ubyte'), labels }));
    expect(err.code).toBe('bad_idx');
    expect(err.message).toMatch(/2 labels.*3 images/);
  });

  it('stops inflating a gzip bomb at maxBytes', async () => {
    const bomb = await writeBytes(join(dir, 'bomb/train-images-idx3-ubyte.gz'), gzipSync(idxFile([2048, 64, 64], new Uint8Array(2048 * 64 * 64))));
    const err = await readError(readDataset({ format: 'idx', images: bomb }, { maxBytes: 1024 * 1024 }));
    expect(err.code).toBe('too_large');
    expect(err.file).toBe(bomb);
  });

  it('refuses a gzipped idx file from its header when the header declares more than maxBytes, without inflating it', async () => {
    // Only 8 bytes of data follow the header: inflating it all would find a short file, not a large one.
    const declared = await writeBytes(join(dir, 'bomb/declared-images-idx3-ubyte.gz'), gzipSync(idxFile([4096, 64, 64], new Uint8Array(8))));
    const err = await readError(readDataset({ format: 'idx', images: declared }, { maxBytes: 1024 * 1024 }));
    expect(err.code).toBe('too_large');
    expect(err.message).toMatch(/idx header declares 16777232 bytes, more than the limit of 1048576/);
  });

  it('refuses images with a zero dimension, whatever the image count', async () => {
    for (const dims of [[1000, 0, 28], [1000, 28, 0], [3_000_000_000, 0, 28]]) {
      const empty = await writeBytes(join(dir, 'empty/train-images-idx3-ubyte.gz'), gzipSync(idxFile(dims, new Uint8Array(0))));
      const err = await readError(readDataset({ format: 'idx', images: empty }));
      expect(err.code).toBe('bad_idx');
      expect(err.message).toMatch(/an image needs at least one pixel/);
    }
  });
});
