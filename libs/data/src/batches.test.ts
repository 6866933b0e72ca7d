import { describe, expect, it } from 'vitest';
import { batchCount, batches } from './batches.js';
import type { ImageDataset } from './image-dataset.js';

// Five 1x2 RGB images; every byte of image i is i, label 10 + i.
const ds: ImageDataset = {
  count: 5,
  height: 1,
  width: 2,
  channels: 3,
  pixels: Uint8Array.from({ length: 5 * 6 }, (_, k) => Math.floor(k / 6)),
  labels: Int32Array.from({ length: 5 }, (_, i) => 10 + i),
};

const imagesOf = (pixels: Uint8Array) => Array.from({ length: pixels.length / 6 }, (_, j) => pixels[j * 6]);

describe('batches', () => {
  it('counts batches with and without the last partial one', () => {
    expect(batchCount(5, 2)).toBe(3);
    expect(batchCount(5, 2, true)).toBe(2);
    expect(batchCount(4, 2, true)).toBe(2);
    expect(() => batchCount(5, 0)).toThrow(RangeError);
  });

  it('yields every image in order, keeping the last partial batch', () => {
    const all = [...batches(ds, { batchSize: 2 })];
    expect(all.map((b) => b.index)).toEqual([0, 1, 2]);
    expect(all.map((b) => Array.from(b.indices))).toEqual([[0, 1], [2, 3], [4]]);
    expect(all.map((b) => imagesOf(b.pixels))).toEqual([[0, 1], [2, 3], [4]]);
    expect(all.map((b) => Array.from(b.labels!))).toEqual([[10, 11], [12, 13], [14]]);
    expect(all[2]!.pixels.length).toBe(6);
  });

  it('follows a custom order, drops the last batch, starts from a batch index', () => {
    const order = Int32Array.of(4, 2, 0, 3, 1);
    const dropped = [...batches(ds, { batchSize: 2, order, dropLast: true })];
    expect(dropped.map((b) => Array.from(b.indices))).toEqual([[4, 2], [0, 3]]);
    expect(dropped.map((b) => imagesOf(b.pixels))).toEqual([[4, 2], [0, 3]]);
    const resumed = [...batches(ds, { batchSize: 2, order, start: 1 })];
    expect(resumed.map((b) => b.index)).toEqual([1, 2]);
    expect(resumed.map((b) => Array.from(b.labels!))).toEqual([[10, 13], [11]]);
  });

  it('hands out fresh buffers, leaving the dataset and the order untouched', () => {
    const order = Int32Array.of(1, 0);
    const [first] = [...batches({ ...ds, labels: undefined }, { batchSize: 2, order })];
    first!.pixels.fill(255);
    first!.indices.fill(3);
    expect(first!.labels).toBeUndefined();
    expect(imagesOf(ds.pixels)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(order)).toEqual([1, 0]);
  });

  it('rejects an order that points outside the dataset', () => {
    expect(() => [...batches(ds, { batchSize: 2, order: Int32Array.of(0, 5) })]).toThrow(RangeError);
  });
});
