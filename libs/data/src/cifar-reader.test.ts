import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_CLASSES } from './cifar-reader.js';
import { readDataset } from './read-dataset.js';
import { readError, tarArchive, useTempDir, writeBytes } from './test-fixtures.js';

const PLANE = 32 * 32;

/** A CIFAR-10 record whose pixel p has R = (p + seed) % 256, G = 1, B = 2: each plane is told apart. */
function record(label: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(1 + 3 * PLANE);
  bytes[0] = label;
  for (let p = 0; p < PLANE; p++) {
    bytes[1 + p] = (p + seed) % 256;
    bytes[1 + PLANE + p] = 1;
    bytes[1 + 2 * PLANE + p] = 2;
  }
  return bytes;
}

function batch(...records: Uint8Array[]): Buffer {
  return Buffer.concat(records);
}

const tmp = useTempDir();
let dir: string;
beforeAll(async () => {
  dir = tmp.path;
  await writeBytes(join(dir, 'cifar/cifar-10-batches-bin/data_batch_2.bin'), batch(record(9, 100)));
  await writeBytes(join(dir, 'cifar/cifar-10-batches-bin/data_batch_1.bin'), batch(record(3, 0), record(5, 7)));
  await writeBytes(join(dir, 'cifar/cifar-10-batches-bin/test_batch.bin'), batch(record(1, 50)));
  await writeBytes(join(dir, 'cifar/cifar-10-batches-bin/batches.meta.txt'), CIFAR10_CLASSES.join('\n'));
});

describe('CIFAR-10', () => {
  it('reads the training batches in order, converting CHW to HWC exactly', async () => {
    const ds = await readDataset(join(dir, 'cifar'));
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([3, 32, 32, 3]);
    expect(Array.from(ds.labels!)).toEqual([3, 5, 9]);
    expect(ds.classNames).toEqual(CIFAR10_CLASSES);
    const image = 32 * 32 * 3;
    for (const [i, seed] of [[0, 0], [1, 7], [2, 100]] as const) {
      for (const p of [0, 1, 31, 32, 1023]) {
        const at = i * image + 3 * p;
        expect(Array.from(ds.pixels.subarray(at, at + 3))).toEqual([(p + seed) % 256, 1, 2]);
      }
    }
  });

  it('reads the test split, explicit files, an archive, and converts channels', async () => {
    const test = await readDataset(join(dir, 'cifar'), { split: 'test' });
    expect(Array.from(test.labels!)).toEqual([1]);
    const explicit = await readDataset({ format: 'cifar10', files: [join(dir, 'cifar/cifar-10-batches-bin/data_batch_2.bin')] }, { channels: 1, imageSize: 16 });
    expect([explicit.count, explicit.height, explicit.width, explicit.channels]).toEqual([1, 16, 16, 1]);
    expect(Array.from(explicit.labels!)).toEqual([9]);
    const archive = await writeBytes(
      join(dir, 'cifar-10-binary.tar.gz'),
      await tarArchive([{ name: 'cifar-10-batches-bin/data_batch_1.bin', data: batch(record(3, 0), record(5, 7)) }], true),
    );
    const fromArchive = await readDataset(archive, { limit: 1 });
    expect(Array.from(fromArchive.labels!)).toEqual([3]);
    expect(fromArchive.pixels.length).toBe(32 * 32 * 3);
  });

  it('reports malformed batches by name', async () => {
    const truncated = await writeBytes(join(dir, 'bad/data_batch_1.bin'), record(1, 0).subarray(1));
    const badLabel = await writeBytes(join(dir, 'bad/test_batch.bin'), record(10, 0));
    for (const file of [truncated, badLabel]) {
      const err = await readError(readDataset({ format: 'cifar10', files: [file] }));
      expect(err.code).toBe('bad_cifar');
      expect(err.file).toBe(file);
    }
  });
});
