import { describe, expect, it } from 'vitest';
import { classCounts, sampleIndices, thumbnails, THUMBNAIL_MAX_SIDE } from './dataset-samples.js';
import type { ImageDataset } from './image-dataset.js';

function dataset(labels: number[] | undefined, side = 2, channels: 1 | 3 = 1, count = labels?.length ?? 10): ImageDataset {
  const pixels = new Uint8Array(count * side * side * channels);
  for (let i = 0; i < count; i++) pixels.fill(i, i * side * side * channels, (i + 1) * side * side * channels);
  return { count, height: side, width: side, channels, pixels, ...(labels && { labels: Int32Array.from(labels) }) };
}

describe('dataset samples', () => {
  it('counts images per class, classes without images included', () => {
    expect(classCounts({ ...dataset([0, 2, 2, 0, 2]), classNames: ['a', 'b', 'c', 'd'] })).toEqual([2, 0, 3, 0]);
    expect(classCounts(dataset(undefined))).toBeNull();
  });

  it('takes classes in turn, spread over each class, and fills up from the larger classes', () => {
    // Class 0 has one image, class 1 nine: ten picks are every image, the lone one first.
    const labels = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1];
    const picks = sampleIndices(dataset(labels), 10);
    expect(picks.slice(0, 2)).toEqual([3, 0]);
    expect([...picks].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(sampleIndices(dataset([0, 0, 0, 0, 1, 1, 1, 1]), 4)).toEqual([0, 4, 2, 6]);
    expect(sampleIndices(dataset(undefined, 2, 1, 10), 5)).toEqual([0, 2, 4, 6, 8]);
    expect(sampleIndices(dataset([0, 1]), 64)).toEqual([0, 1]);
  });

  it('makes PNG thumbnails of the picked images, shrunk only beyond the largest side', async () => {
    const [small] = await thumbnails(dataset([5, 6], 2), 1);
    expect(small!.label).toBe(5);
    expect(small!.png.subarray(1, 4).toString()).toBe('PNG');
    expect(small!.png.readUInt32BE(16)).toBe(2);
    const [large] = await thumbnails(dataset(undefined, 100, 3, 1), 1);
    expect(large!.label).toBeNull();
    expect([large!.png.readUInt32BE(16), large!.png.readUInt32BE(20)]).toEqual([THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE]);
  });
});
